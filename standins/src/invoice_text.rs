//! The plain-text invoice document of SYSTEMS.md: `Label: value` lines, then a `Lines:`
//! table of `SKU | description | quantity | unit price` rows. The LLM stand-in reads
//! documents with this instead of a model.

use crate::http::number;
use serde_json::{Value, json};

/// What could be read from a document; `None` where a field was absent or unreadable.
#[derive(Debug, Default, PartialEq)]
pub struct ParsedInvoice {
    pub vendor: Option<String>,
    pub invoice_number: Option<String>,
    pub date: Option<String>,
    pub po_number: Option<String>,
    pub currency: Option<String>,
    pub lines: Vec<Line>,
    pub tax: Option<f64>,
    pub shipping: Option<f64>,
    pub total: Option<f64>,
    /// Whether some table row could not be read (and was left out).
    pub bad_rows: bool,
}

/// One row of the lines table; purchase orders have the same lines.
#[derive(Debug, PartialEq, serde::Deserialize)]
pub struct Line {
    pub sku: String,
    #[serde(default)]
    pub description: String,
    pub quantity: f64,
    pub unit_price: f64,
}

impl Line {
    /// The line as SYSTEMS.md writes it (whole quantities as integers).
    pub fn to_json(&self) -> Value {
        json!({
            "sku": self.sku,
            "description": self.description,
            "quantity": number(self.quantity),
            "unit_price": self.unit_price,
        })
    }
}

impl ParsedInvoice {
    /// Whether the document had what an invoice needs: vendor, invoice number, total,
    /// and only readable rows.
    pub fn is_complete(&self) -> bool {
        self.vendor.is_some()
            && self.invoice_number.is_some()
            && self.total.is_some()
            && !self.bad_rows
    }

    /// The extracted-invoice JSON of SYSTEMS.md, without `confidence`; fields not found
    /// are `null` (so a reader with optional fields needs no defaults).
    pub fn to_json(&self) -> Value {
        let lines: Vec<Value> = self.lines.iter().map(Line::to_json).collect();
        json!({
            "vendor": self.vendor,
            "invoice_number": self.invoice_number,
            "date": self.date,
            "po_number": self.po_number,
            "currency": self.currency,
            "lines": lines,
            "tax": self.tax,
            "shipping": self.shipping,
            "total": self.total,
        })
    }
}

/// Reads a document. Never fails: what cannot be read is left out, as a model would.
pub fn parse(document: &str) -> ParsedInvoice {
    let mut invoice = ParsedInvoice::default();
    let mut in_table = false;
    for raw in document.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        // Inside the table a row is any line with a `|`; descriptions may hold colons.
        if in_table && line.contains('|') {
            match parse_row(line) {
                Some(row) => invoice.lines.push(row),
                None => invoice.bad_rows = true,
            }
            continue;
        }
        let Some((label, value)) = line.split_once(':') else {
            continue;
        };
        in_table = false;
        let value = value.trim();
        let text = (!value.is_empty()).then(|| value.to_owned());
        match name_key(label).as_str() {
            "vendor" | "supplier" => invoice.vendor = text,
            "invoicenumber" | "invoiceno" | "invoice" | "invoiceid" => {
                invoice.invoice_number = text
            }
            "date" | "invoicedate" => invoice.date = text,
            "ponumber" | "pono" | "po" | "purchaseorder" | "purchaseordernumber" => {
                invoice.po_number = text
            }
            "currency" => invoice.currency = text,
            "lines" | "items" | "lineitems" => in_table = true,
            "tax" | "vat" => invoice.tax = amount(value),
            "shipping" | "freight" => invoice.shipping = amount(value),
            "total" | "totaldue" | "amountdue" => invoice.total = amount(value),
            _ => {}
        }
    }
    invoice
}

/// `SKU | description | quantity | unit price`.
fn parse_row(line: &str) -> Option<Line> {
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    let [sku, description, quantity, unit_price] = cells[..] else {
        return None;
    };
    if sku.is_empty() {
        return None;
    }
    Some(Line {
        sku: sku.to_owned(),
        description: description.to_owned(),
        quantity: amount(quantity)?,
        unit_price: amount(unit_price)?,
    })
}

/// A number as invoices write it: thousands commas and a currency code or sign around
/// it are tolerated (`EUR 1,234.50`).
fn amount(text: &str) -> Option<f64> {
    let cleaned: String = text.chars().filter(|c| *c != ',' && *c != ' ').collect();
    let core = cleaned.trim_matches(|c: char| !c.is_ascii_digit() && c != '-' && c != '.');
    core.parse().ok().filter(|f: &f64| f.is_finite())
}

/// A name reduced for comparison: alphanumerics only, lowercased, so
/// `Acme Supplies Ltd.` and `ACME supplies ltd` are the same vendor.
pub fn name_key(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENT: &str = "INVOICE
Vendor: Acme Supplies Ltd.
Invoice number: INV-1001
Date: 2026-11-02
PO number: PO-5001
Currency: EUR
Lines:
WID-1 | Widgets, blue | 10 | 12.50
GAD-2 | Gadget: large | 4  | 100.00
Tax: 99.75
Shipping: 10.00
Total: 634.75
";

    #[test]
    fn reads_the_documented_format() {
        let invoice = parse(DOCUMENT);
        assert!(invoice.is_complete());
        assert_eq!(invoice.vendor.as_deref(), Some("Acme Supplies Ltd."));
        assert_eq!(invoice.po_number.as_deref(), Some("PO-5001"));
        assert_eq!(invoice.lines.len(), 2);
        assert_eq!(invoice.lines[1].description, "Gadget: large");
        assert_eq!(invoice.lines[1].unit_price, 100.0);
        assert_eq!(invoice.total, Some(634.75));
        let json = invoice.to_json();
        assert_eq!(json["lines"][0]["quantity"], 10);
        assert_eq!(json["tax"], 99.75);
    }

    #[test]
    fn labels_ignore_case_and_amounts_tolerate_decoration() {
        let invoice = parse("VENDOR: Globex\nINVOICE NUMBER: G-7\nTOTAL: EUR 1,234.50\n");
        assert_eq!(invoice.vendor.as_deref(), Some("Globex"));
        assert_eq!(invoice.invoice_number.as_deref(), Some("G-7"));
        assert_eq!(invoice.total, Some(1234.5));
        assert!(invoice.is_complete());
    }

    #[test]
    fn what_cannot_be_read_is_left_out() {
        let invoice = parse("Total: 5\nLines:\nA | thing | many | 1.00\nB | ok | 2 | 3\n");
        assert_eq!(invoice.vendor, None);
        assert_eq!(invoice.lines.len(), 1);
        assert!(invoice.bad_rows);
        assert!(!invoice.is_complete());
        assert_eq!(invoice.to_json()["vendor"], Value::Null);
    }

    #[test]
    fn name_keys_ignore_case_spaces_and_punctuation() {
        assert_eq!(
            name_key("Acme Supplies Ltd."),
            name_key("ACME supplies, ltd")
        );
        assert_ne!(name_key("Acme"), name_key("Acme Ltd"));
    }
}
