//! Three-way match: invoice against purchase order (PO) and goods receipt.
//!
//! Every check produces at most one finding, `review` or `reject`; the decision is the
//! most severe finding (`reject` > `review` > `approve`). Reasons list rejections first,
//! then points to review, each a sentence naming the SKU and the figures.

use std::collections::HashMap;

use baton_sdk::prelude::*;

/// Input of `three-way-match`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct MatchIn {
    /// The supplier's invoice.
    pub invoice: Invoice,
    /// The purchase order the invoice refers to.
    pub po: PurchaseOrder,
    /// What the warehouse received. Without it, the decision is at best `review`.
    #[serde(default)]
    pub receipt: Option<Receipt>,
    /// How much difference is accepted without a person.
    #[serde(default)]
    pub tolerance: Tolerance,
}

/// A supplier invoice.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct Invoice {
    /// The supplier's name.
    pub vendor: String,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// The invoiced items.
    pub lines: Vec<PricedLine>,
    /// The amount due, including tax and shipping.
    pub total: f64,
    /// Tax included in `total` (default 0).
    #[serde(default)]
    pub tax: f64,
    /// Shipping and handling included in `total` (default 0).
    #[serde(default)]
    pub shipping: f64,
}

/// A purchase order.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct PurchaseOrder {
    /// The supplier the order was placed with.
    pub vendor: String,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// The ordered items and agreed prices.
    pub lines: Vec<PricedLine>,
}

/// An invoice or PO line.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct PricedLine {
    /// The item's stock-keeping unit.
    pub sku: String,
    /// How many units.
    pub quantity: f64,
    /// Price per unit, in the document's currency.
    pub unit_price: f64,
}

/// A goods receipt.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct Receipt {
    /// What arrived.
    pub lines: Vec<ReceivedLine>,
}

/// A receipt line.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ReceivedLine {
    /// The item's stock-keeping unit.
    pub sku: String,
    /// How many units arrived.
    pub quantity: f64,
}

/// Tolerances. Differences within them are approved; up to `review_pct` a person
/// reviews; beyond that the invoice is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Tolerance {
    /// Unit price may exceed the PO price by this fraction (0.02 = 2%).
    pub price_pct: f64,
    /// Absolute amount, in the invoice currency: a line whose overcharge adds at most
    /// this much is accepted, and the total may differ from the lines by this much.
    pub amount: f64,
    /// Differences beyond the tolerances but up to this fraction (0.10 = 10%) go to
    /// review; larger ones are rejected.
    pub review_pct: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            price_pct: 0.02,
            amount: 1.00,
            review_pct: 0.10,
        }
    }
}

/// Floating-point slack for comparisons (far below a cent or a unit).
const EPS: f64 = 1e-9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Review,
    Reject,
}

/// The rule: see the module docs and README.md.
pub fn three_way_match(input: MatchIn) -> Result<Decision, Failure> {
    let tol = input.tolerance;
    for (name, value) in [
        ("price_pct", tol.price_pct),
        ("amount", tol.amount),
        ("review_pct", tol.review_pct),
    ] {
        if value.is_nan() || value < 0.0 {
            return Err(Failure::invalid_input(format!(
                "tolerance `{name}` must not be negative (got {value})"
            )));
        }
    }
    Ok(evaluate(&input))
}

/// Pure matching, no failure paths.
pub fn evaluate(input: &MatchIn) -> Decision {
    let MatchIn {
        invoice,
        po,
        receipt,
        tolerance: tol,
    } = input;
    let review_pct = tol.review_pct.max(tol.price_pct);
    let cur = invoice.currency.trim().to_ascii_uppercase();
    let mut findings: Vec<(Severity, String)> = Vec::new();

    // Header: who and which currency.
    if normalize_name(&invoice.vendor) != normalize_name(&po.vendor) {
        findings.push((
            Severity::Reject,
            format!(
                "The invoice is from vendor \"{}\" but the purchase order was placed with \"{}\".",
                invoice.vendor.trim(),
                po.vendor.trim()
            ),
        ));
    }
    let po_cur = po.currency.trim().to_ascii_uppercase();
    if cur != po_cur {
        findings.push((
            Severity::Reject,
            format!(
                "The invoice is in {cur} but the purchase order is in {po_cur}, so prices cannot be compared."
            ),
        ));
    }
    if invoice.lines.is_empty() {
        findings.push((
            Severity::Review,
            "The invoice has no lines, so nothing could be matched against the purchase order."
                .to_string(),
        ));
    }

    let ordered = group_priced(&po.lines);
    let received: Option<HashMap<String, f64>> = receipt.as_ref().map(|r| {
        let mut map = HashMap::new();
        for line in &r.lines {
            *map.entry(sku_key(&line.sku)).or_insert(0.0) += line.quantity;
        }
        map
    });
    if received.is_none() {
        findings.push((
            Severity::Review,
            "No goods receipt was provided, so a person must confirm the goods arrived."
                .to_string(),
        ));
    }

    // Invoiced quantity per SKU, in order of first appearance.
    let mut invoiced: Vec<(String, &str, f64)> = Vec::new();
    for line in &invoice.lines {
        let key = sku_key(&line.sku);
        match invoiced.iter_mut().find(|(k, _, _)| *k == key) {
            Some(entry) => entry.2 += line.quantity,
            None => invoiced.push((key, line.sku.trim(), line.quantity)),
        }
    }

    // Lines: price against the PO.
    for line in &invoice.lines {
        let sku = line.sku.trim();
        let q = line.quantity;
        let p = line.unit_price;
        if q <= 0.0 || p < 0.0 {
            findings.push((
                Severity::Review,
                format!(
                    "SKU {sku}: the invoice line has quantity {} at {} per unit; lines that are not positive (credits, corrections) need a person.",
                    qty(q),
                    money(p, &cur)
                ),
            ));
            continue;
        }
        let Some(order) = ordered.get(&sku_key(sku)) else {
            findings.push((
                Severity::Reject,
                format!(
                    "SKU {sku} is on the invoice ({} at {} each) but not on the purchase order.",
                    units(q),
                    money(p, &cur)
                ),
            ));
            continue;
        };
        let po_price = order.unit_price;
        let diff = p - po_price;
        if diff.abs() <= EPS {
            continue;
        }
        if po_price <= EPS {
            findings.push((
                Severity::Reject,
                format!(
                    "SKU {sku}: invoiced at {} per unit, but the purchase order price is {}.",
                    money(p, &cur),
                    money(po_price, &cur)
                ),
            ));
            continue;
        }
        let rel = diff / po_price;
        let extra = diff * q;
        if diff > 0.0 {
            if rel <= tol.price_pct + EPS || extra <= tol.amount + EPS {
                continue;
            }
            let head = format!(
                "SKU {sku}: invoiced at {} per unit, {} above the purchase order price of {} ({} more on this line)",
                money(p, &cur),
                pct(rel),
                money(po_price, &cur),
                money(extra, &cur)
            );
            findings.push(if rel <= review_pct + EPS {
                (
                    Severity::Review,
                    format!(
                        "{head}; that is over the {} tolerance, so a person must approve it.",
                        pct(tol.price_pct)
                    ),
                )
            } else {
                (
                    Severity::Reject,
                    format!(
                        "{head}; that is more than the {} a person may approve.",
                        pct(review_pct)
                    ),
                )
            });
        } else if -rel > tol.price_pct + EPS && -extra > tol.amount + EPS {
            findings.push((
                Severity::Review,
                format!(
                    "SKU {sku}: invoiced at {} per unit, {} below the purchase order price of {}; check that the right item was invoiced.",
                    money(p, &cur),
                    pct(-rel),
                    money(po_price, &cur)
                ),
            ));
        }
    }

    // Quantities per SKU: against the PO, then against the receipt.
    for (key, sku, q) in &invoiced {
        let Some(order) = ordered.get(key) else {
            continue; // already rejected above
        };
        if *q <= 0.0 {
            continue; // already reviewed above
        }
        let over = q - order.quantity;
        if over > EPS {
            let rel = if order.quantity > EPS {
                over / order.quantity
            } else {
                f64::INFINITY
            };
            let severity = if rel <= review_pct + EPS {
                Severity::Review
            } else {
                Severity::Reject
            };
            let how_much = if rel.is_finite() {
                format!(" ({} more)", pct(rel))
            } else {
                String::new()
            };
            let verdict = match severity {
                Severity::Review => "a person must approve the extra units".to_string(),
                Severity::Reject => {
                    format!("more than the {} a person may approve", pct(review_pct))
                }
            };
            findings.push((
                severity,
                format!(
                    "SKU {sku}: {} invoiced but only {} ordered{how_much}; {verdict}.",
                    units(*q),
                    qty(order.quantity)
                ),
            ));
        }
        if let Some(received) = &received {
            let got = received.get(key).copied().unwrap_or(0.0);
            if *q > got + EPS {
                let sentence = if got <= EPS {
                    format!("SKU {sku}: {} invoiced but none received yet.", units(*q))
                } else {
                    format!(
                        "SKU {sku}: {} invoiced but only {} received so far.",
                        units(*q),
                        qty(got)
                    )
                };
                findings.push((Severity::Review, sentence));
            }
        }
    }

    // Total: the invoice's own arithmetic.
    let lines_sum: f64 = invoice
        .lines
        .iter()
        .map(|l| l.quantity * l.unit_price)
        .sum();
    let expected = lines_sum + invoice.tax + invoice.shipping;
    let gap = invoice.total - expected;
    if gap.abs() > tol.amount + 1e-6 {
        let rel = if expected.abs() > EPS {
            gap.abs() / expected.abs()
        } else {
            f64::INFINITY
        };
        let extras = if invoice.tax != 0.0 || invoice.shipping != 0.0 {
            format!(
                " (lines {} plus tax {} and shipping {})",
                money(lines_sum, &cur),
                money(invoice.tax, &cur),
                money(invoice.shipping, &cur)
            )
        } else {
            String::new()
        };
        let head = format!(
            "The invoice total {} differs by {} from the {} its lines add up to{extras}",
            money(invoice.total, &cur),
            money(gap.abs(), &cur),
            money(expected, &cur)
        );
        findings.push(if rel <= review_pct + EPS {
            (
                Severity::Review,
                format!(
                    "{head}; that is over the {} tolerance, so a person must check it.",
                    money(tol.amount, &cur)
                ),
            )
        } else {
            (
                Severity::Reject,
                format!(
                    "{head}; that is more than the {} a person may approve.",
                    pct(review_pct)
                ),
            )
        });
    }

    let worst = findings.iter().map(|(s, _)| *s).max();
    match worst {
        None => {
            let lines = match invoice.lines.len() {
                1 => "The invoice line matches".to_string(),
                n => format!("All {n} invoice lines match"),
            };
            Decision::new("approve").because(format!(
                "{lines} the purchase order in price (within {}) and quantity, all goods were received, and the total {} matches the lines.",
                pct(tol.price_pct),
                money(invoice.total, &cur)
            ))
        }
        Some(worst) => {
            let outcome = match worst {
                Severity::Reject => "reject",
                Severity::Review => "review",
            };
            // Stable sort: rejections first, each group in the order found.
            findings.sort_by_key(|f| std::cmp::Reverse(f.0));
            Decision::with_reasons(outcome, findings.into_iter().map(|(_, r)| r))
        }
    }
}

/// Ordered quantity and (quantity-weighted) unit price per SKU.
struct Ordered {
    quantity: f64,
    unit_price: f64,
}

fn group_priced(lines: &[PricedLine]) -> HashMap<String, Ordered> {
    let mut sums: HashMap<String, (f64, f64, f64)> = HashMap::new();
    for line in lines {
        let e = sums
            .entry(sku_key(&line.sku))
            .or_insert((0.0, 0.0, line.unit_price));
        e.0 += line.quantity;
        e.1 += line.quantity * line.unit_price;
    }
    sums.into_iter()
        .map(|(k, (q, amount, first_price))| {
            let unit_price = if q > EPS { amount / q } else { first_price };
            (
                k,
                Ordered {
                    quantity: q,
                    unit_price,
                },
            )
        })
        .collect()
}

/// SKUs compare trimmed and case-insensitively.
fn sku_key(sku: &str) -> String {
    sku.trim().to_uppercase()
}

/// Vendor names compare ignoring case, spaces and punctuation ("ACME, Inc." = "Acme Inc").
fn normalize_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// `1234.5` → `1,234.50 EUR`.
fn money(amount: f64, currency: &str) -> String {
    let cents = (amount.abs() * 100.0).round() as u128;
    let (units, frac) = (cents / 100, cents % 100);
    let digits = units.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if amount < 0.0 && cents > 0 { "-" } else { "" };
    if currency.is_empty() {
        format!("{sign}{grouped}.{frac:02}")
    } else {
        format!("{sign}{grouped}.{frac:02} {currency}")
    }
}

/// `10.0` → `10`, `2.5` → `2.5`, at most three decimals.
fn qty(q: f64) -> String {
    let s = format!("{q:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// `1.0` → `1 unit`, `2.5` → `2.5 units`.
fn units(q: f64) -> String {
    let n = qty(q);
    if n == "1" {
        "1 unit".to_string()
    } else {
        format!("{n} units")
    }
}

/// `0.045` → `4.5%`.
fn pct(fraction: f64) -> String {
    let s = format!("{:.1}", fraction * 100.0);
    format!("{}%", s.strip_suffix(".0").unwrap_or(&s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> serde_json::Value {
        json!({
            "invoice": {
                "vendor": "Acme Supplies Ltd.",
                "currency": "EUR",
                "lines": [
                    { "sku": "WID-1", "quantity": 10, "unit_price": 12.50 },
                    { "sku": "GAD-2", "quantity": 4, "unit_price": 100.00 }
                ],
                "total": 525.00
            },
            "po": {
                "vendor": "ACME Supplies Ltd",
                "currency": "eur",
                "lines": [
                    { "sku": "WID-1", "quantity": 10, "unit_price": 12.50 },
                    { "sku": "GAD-2", "quantity": 4, "unit_price": 100.00 },
                    { "sku": "OTHER", "quantity": 1, "unit_price": 5.00 }
                ]
            },
            "receipt": {
                "lines": [
                    { "sku": "WID-1", "quantity": 10 },
                    { "sku": "gad-2", "quantity": 4 }
                ]
            }
        })
    }

    fn run(v: serde_json::Value) -> Decision {
        three_way_match(serde_json::from_value(v).unwrap()).unwrap()
    }

    fn run_with(edit: impl FnOnce(&mut serde_json::Value)) -> Decision {
        let mut v = base();
        edit(&mut v);
        run(v)
    }

    #[test]
    fn exact_match_is_approved() {
        let d = run(base());
        assert_eq!(d.outcome, "approve", "{:?}", d.reasons);
        assert_eq!(
            d.reasons,
            [
                "All 2 invoice lines match the purchase order in price (within 2%) and quantity, all goods were received, and the total 525.00 EUR matches the lines."
            ]
        );
    }

    #[test]
    fn small_price_difference_within_tolerance_is_approved() {
        // 12.70 vs 12.50 is 1.6% above: within 2%.
        let d = run_with(|v| {
            v["invoice"]["lines"][0]["unit_price"] = json!(12.70);
            v["invoice"]["total"] = json!(527.00);
        });
        assert_eq!(d.outcome, "approve", "{:?}", d.reasons);
    }

    #[test]
    fn overcharge_under_the_absolute_amount_is_approved() {
        // 1 unit at 5% over the PO price, but only 0.50 EUR more in total.
        let d = run(json!({
            "invoice": { "vendor": "A", "currency": "EUR", "total": 10.50,
                "lines": [{ "sku": "S", "quantity": 1, "unit_price": 10.50 }] },
            "po": { "vendor": "A", "currency": "EUR",
                "lines": [{ "sku": "S", "quantity": 1, "unit_price": 10.00 }] },
            "receipt": { "lines": [{ "sku": "S", "quantity": 1 }] }
        }));
        assert_eq!(d.outcome, "approve", "{:?}", d.reasons);
    }

    #[test]
    fn price_over_tolerance_goes_to_review() {
        // 13.00 vs 12.50 is 4% above.
        let d = run_with(|v| {
            v["invoice"]["lines"][0]["unit_price"] = json!(13.00);
            v["invoice"]["total"] = json!(530.00);
        });
        assert_eq!(d.outcome, "review");
        assert_eq!(
            d.reasons,
            [
                "SKU WID-1: invoiced at 13.00 EUR per unit, 4% above the purchase order price of 12.50 EUR (5.00 EUR more on this line); that is over the 2% tolerance, so a person must approve it."
            ]
        );
    }

    #[test]
    fn price_far_over_is_rejected() {
        // 15.00 vs 12.50 is 20% above.
        let d = run_with(|v| {
            v["invoice"]["lines"][0]["unit_price"] = json!(15.00);
            v["invoice"]["total"] = json!(550.00);
        });
        assert_eq!(d.outcome, "reject");
        assert_eq!(
            d.reasons,
            [
                "SKU WID-1: invoiced at 15.00 EUR per unit, 20% above the purchase order price of 12.50 EUR (25.00 EUR more on this line); that is more than the 10% a person may approve."
            ]
        );
    }

    #[test]
    fn price_well_below_po_goes_to_review() {
        let d = run_with(|v| {
            v["invoice"]["lines"][1]["unit_price"] = json!(50.00);
            v["invoice"]["total"] = json!(325.00);
        });
        assert_eq!(d.outcome, "review");
        assert_eq!(
            d.reasons,
            [
                "SKU GAD-2: invoiced at 50.00 EUR per unit, 50% below the purchase order price of 100.00 EUR; check that the right item was invoiced."
            ]
        );
    }

    #[test]
    fn vendor_mismatch_is_rejected() {
        let d = run_with(|v| v["invoice"]["vendor"] = json!("Globex Corp"));
        assert_eq!(d.outcome, "reject");
        assert_eq!(
            d.reasons,
            [
                "The invoice is from vendor \"Globex Corp\" but the purchase order was placed with \"ACME Supplies Ltd\"."
            ]
        );
    }

    #[test]
    fn currency_mismatch_is_rejected() {
        let d = run_with(|v| v["invoice"]["currency"] = json!("USD"));
        assert_eq!(d.outcome, "reject");
        assert!(d.reasons[0].contains("in USD but the purchase order is in EUR"));
    }

    #[test]
    fn sku_not_on_po_is_rejected() {
        let d = run_with(|v| {
            v["invoice"]["lines"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "sku": "NEW-9", "quantity": 1, "unit_price": 10.0 }));
            v["invoice"]["total"] = json!(535.00);
        });
        assert_eq!(d.outcome, "reject");
        assert_eq!(
            d.reasons,
            [
                "SKU NEW-9 is on the invoice (1 unit at 10.00 EUR each) but not on the purchase order."
            ]
        );
    }

    #[test]
    fn small_quantity_overbilling_goes_to_review() {
        let d = run(json!({
            "invoice": { "vendor": "A", "currency": "EUR", "total": 1050.0,
                "lines": [{ "sku": "S", "quantity": 105, "unit_price": 10.0 }] },
            "po": { "vendor": "A", "currency": "EUR",
                "lines": [{ "sku": "S", "quantity": 100, "unit_price": 10.0 }] },
            "receipt": { "lines": [{ "sku": "S", "quantity": 105 }] }
        }));
        assert_eq!(d.outcome, "review");
        assert_eq!(
            d.reasons,
            [
                "SKU S: 105 units invoiced but only 100 ordered (5% more); a person must approve the extra units."
            ]
        );
    }

    #[test]
    fn large_quantity_overbilling_is_rejected() {
        let d = run_with(|v| {
            v["invoice"]["lines"][0]["quantity"] = json!(20);
            v["invoice"]["total"] = json!(650.00);
            v["receipt"]["lines"][0]["quantity"] = json!(20);
        });
        assert_eq!(d.outcome, "reject");
        assert_eq!(
            d.reasons,
            [
                "SKU WID-1: 20 units invoiced but only 10 ordered (100% more); more than the 10% a person may approve."
            ]
        );
    }

    #[test]
    fn partial_invoice_is_approved() {
        // Fewer units than ordered and received: fine.
        let d = run_with(|v| {
            v["invoice"]["lines"][0]["quantity"] = json!(6);
            v["invoice"]["total"] = json!(475.00);
        });
        assert_eq!(d.outcome, "approve", "{:?}", d.reasons);
    }

    #[test]
    fn goods_not_received_go_to_review() {
        let d = run_with(|v| {
            v["receipt"]["lines"] = json!([{ "sku": "WID-1", "quantity": 7.5 }]);
        });
        assert_eq!(d.outcome, "review");
        assert_eq!(
            d.reasons,
            [
                "SKU WID-1: 10 units invoiced but only 7.5 received so far.",
                "SKU GAD-2: 4 units invoiced but none received yet."
            ]
        );
    }

    #[test]
    fn missing_receipt_goes_to_review() {
        let d = run_with(|v| {
            v.as_object_mut().unwrap().remove("receipt");
        });
        assert_eq!(d.outcome, "review");
        assert_eq!(
            d.reasons,
            ["No goods receipt was provided, so a person must confirm the goods arrived."]
        );
    }

    #[test]
    fn total_off_by_a_few_cents_is_approved() {
        let d = run_with(|v| v["invoice"]["total"] = json!(525.40));
        assert_eq!(d.outcome, "approve", "{:?}", d.reasons);
    }

    #[test]
    fn total_off_a_bit_goes_to_review() {
        let d = run_with(|v| v["invoice"]["total"] = json!(550.00));
        assert_eq!(d.outcome, "review");
        assert_eq!(
            d.reasons,
            [
                "The invoice total 550.00 EUR differs by 25.00 EUR from the 525.00 EUR its lines add up to; that is over the 1.00 EUR tolerance, so a person must check it."
            ]
        );
    }

    #[test]
    fn total_far_off_is_rejected() {
        let d = run_with(|v| v["invoice"]["total"] = json!(5250.00));
        assert_eq!(d.outcome, "reject");
        assert_eq!(
            d.reasons,
            [
                "The invoice total 5,250.00 EUR differs by 4,725.00 EUR from the 525.00 EUR its lines add up to; that is more than the 10% a person may approve."
            ]
        );
    }

    #[test]
    fn tax_and_shipping_count_toward_the_total() {
        let d = run_with(|v| {
            v["invoice"]["tax"] = json!(99.75);
            v["invoice"]["shipping"] = json!(10);
            v["invoice"]["total"] = json!(634.75);
        });
        assert_eq!(d.outcome, "approve", "{:?}", d.reasons);
    }

    #[test]
    fn rejections_come_before_reviews() {
        let d = run_with(|v| {
            v["invoice"]["vendor"] = json!("Other GmbH");
            v["receipt"]["lines"] = json!([]);
        });
        assert_eq!(d.outcome, "reject");
        assert!(d.reasons[0].starts_with("The invoice is from vendor"));
        assert_eq!(d.reasons.len(), 3);
    }

    #[test]
    fn custom_tolerance_applies() {
        let d = run_with(|v| {
            v["invoice"]["lines"][0]["unit_price"] = json!(13.00);
            v["invoice"]["total"] = json!(530.00);
            v["tolerance"] = json!({ "price_pct": 0.05 });
        });
        assert_eq!(d.outcome, "approve", "{:?}", d.reasons);
    }

    #[test]
    fn negative_tolerance_is_invalid_input() {
        let mut v = base();
        v["tolerance"] = json!({ "amount": -1 });
        let err = three_way_match(serde_json::from_value(v).unwrap()).unwrap_err();
        assert_eq!(err.code, "invalid_input");
    }

    #[test]
    fn empty_invoice_goes_to_review() {
        let d = run_with(|v| {
            v["invoice"]["lines"] = json!([]);
            v["invoice"]["total"] = json!(0);
        });
        assert_eq!(d.outcome, "review");
        assert_eq!(
            d.reasons,
            ["The invoice has no lines, so nothing could be matched against the purchase order."]
        );
    }

    #[test]
    fn formats_figures_for_people() {
        assert_eq!(money(1234567.891, "EUR"), "1,234,567.89 EUR");
        assert_eq!(money(-0.5, "USD"), "-0.50 USD");
        assert_eq!(money(0.0, "USD"), "0.00 USD");
        assert_eq!(qty(10.0), "10");
        assert_eq!(qty(2.50), "2.5");
        assert_eq!(pct(0.045), "4.5%");
        assert_eq!(pct(0.2), "20%");
    }

    #[test]
    fn dispatch_through_the_plugin() {
        let d = crate::BatonPlugin::evaluate("three-way-match", &base().to_string()).unwrap();
        assert_eq!(d.outcome, "approve");
        let err =
            crate::BatonPlugin::evaluate("three-way-match", r#"{"invoice": {}}"#).unwrap_err();
        assert_eq!(err.code, "invalid_input");
        assert!(
            err.message.contains("invoice.vendor") || err.message.contains("vendor"),
            "{}",
            err.message
        );
        let err = crate::BatonPlugin::evaluate("nope", "{}").unwrap_err();
        assert_eq!(err.code, "unknown_action");
        assert!(err.message.contains("three-way-match"));
        let info = crate::BatonPlugin::describe();
        assert_eq!(info.name, "invoice-rules");
        assert_eq!(info.actions[0].outcomes, ["approve", "review", "reject"]);
        assert!(info.actions[0].input_schema.contains("unit_price"));
    }
}
