//! `erp`: the ERP connector of the invoice flow. Looks up vendors, purchase orders and
//! goods receipts, and posts approved invoices exactly once; it speaks the ERP API of
//! `examples/invoice/SYSTEMS.md`. See README.md.

use baton_sdk::config;
use baton_sdk::http::{Method, Request, Response, endpoint};
use baton_sdk::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

baton_sdk::connector! {
    name: "erp", version: "0.1.0",
    description: "ERP connector: vendor master, purchase orders, goods receipts, invoice posting",
    hosts: ["*"], secrets: ["api-key"],
    actions: {
        "find-vendor" => find_vendor: "Find an active vendor in the vendor master by name",
        "get-purchase-order" => get_purchase_order: "Fetch a purchase order by number",
        "get-goods-receipt" => get_goods_receipt: "The goods received against a purchase order, summed per SKU",
        "post-invoice" => post_invoice: "Post an approved supplier invoice, exactly once per workflow step",
    }
}

/// How failure messages name the far end.
const SERVICE: &str = "the ERP";

/// A vendor name to look up.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FindVendorIn {
    /// The vendor's name as written on the invoice, e.g. `Acme Supplies Ltd.`; the ERP
    /// matches it ignoring case, spaces and punctuation.
    pub name: String,
}

/// A vendor from the vendor master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Vendor {
    /// The ERP's vendor id, e.g. `V-001`.
    pub id: String,
    /// The vendor's name in the master data.
    pub name: String,
    /// The bank account payments go to (null if the master data has none).
    #[serde(default)]
    pub iban: Option<String>,
    /// `active`; other statuses (e.g. `blocked`) fail with `vendor_blocked`.
    pub status: String,
}

/// A purchase order number.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PoNumberIn {
    /// The purchase order number, e.g. `PO-5001`.
    pub po_number: String,
}

/// A purchase order as the ERP holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PurchaseOrder {
    /// The purchase order number, e.g. `PO-5001`.
    pub number: String,
    /// The vendor's id in the ERP.
    pub vendor_id: String,
    /// The vendor's name.
    pub vendor: String,
    /// ISO 4217 currency code, e.g. `EUR`.
    pub currency: String,
    /// The order's status, e.g. `open`.
    pub status: String,
    /// What was ordered.
    pub lines: Vec<Line>,
}

/// One item of a purchase order or of an invoice (the ERP's one shape for both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Line {
    /// The article number.
    pub sku: String,
    /// What the article is.
    #[serde(default)]
    pub description: String,
    /// Units ordered, or invoiced.
    pub quantity: f64,
    /// Price per unit (on a purchase order, the agreed one).
    pub unit_price: f64,
}

/// The goods received against a purchase order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GoodsReceipt {
    /// The purchase order number.
    pub po_number: String,
    /// Units received per SKU, all receipts summed; empty when nothing arrived yet.
    pub lines: Vec<ReceivedLine>,
}

/// Units received of one article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReceivedLine {
    /// The article number.
    pub sku: String,
    /// Units received.
    pub quantity: f64,
}

/// An approved invoice to post. Other fields (e.g. `vendor`) are accepted and ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PostInvoiceIn {
    /// The ERP's vendor id (from `find-vendor`), e.g. `V-001`.
    pub vendor_id: String,
    /// The vendor's invoice number, e.g. `INV-1001`.
    pub invoice_number: String,
    /// The purchase order the invoice bills.
    pub po_number: String,
    /// The invoice date, `YYYY-MM-DD`.
    pub date: String,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The invoice total, tax and shipping included.
    pub total: f64,
    /// Tax (0 if none).
    #[serde(default)]
    pub tax: f64,
    /// Shipping (0 if none).
    #[serde(default)]
    pub shipping: f64,
    /// The invoiced items.
    pub lines: Vec<Line>,
}

/// The posted invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Posted {
    /// The ERP's id of the posted invoice, e.g. `ERP-INV-000001`.
    pub id: String,
    /// `posted`.
    pub status: String,
}

/// The ERP's answer to a vendor search.
#[derive(Debug, Deserialize)]
struct VendorList {
    vendors: Vec<Vendor>,
}

/// Where the ERP is and how to authenticate: config `base_url`, secret `api-key`.
struct Erp {
    base_url: String,
    api_key: String,
}

impl Erp {
    fn from_config() -> Result<Erp, Failure> {
        Ok(Erp {
            base_url: config::require_str("base_url")?,
            api_key: config::require_secret("api-key")?,
        })
    }

    fn request(&self, method: Method, path: &str) -> Request {
        Request::new(method, endpoint(&self.base_url, path)).bearer(&self.api_key)
    }
}

/// Sends `request`; transport trouble is a retryable `upstream_unavailable`.
fn send(request: Request) -> Result<Response, Failure> {
    request.send().map_err(|e| e.upstream_failure(SERVICE))
}

/// The body of a 2xx response as `T`; any other status is the SDK's conventional
/// failure (`unauthorized`, `not_found`, retryable `upstream_unavailable`, ...).
fn parse<T: DeserializeOwned>(response: &Response) -> Result<T, Failure> {
    Ok(response.success(SERVICE)?.json()?)
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a path segment
/// or a query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn not_blank(field: &str, value: &str) -> Result<(), Failure> {
    if value.trim().is_empty() {
        return Err(Failure::invalid_input(format!(
            "`{field}` must not be empty"
        )));
    }
    Ok(())
}

fn find_vendor(_ctx: &Call, input: FindVendorIn) -> Result<Vendor, Failure> {
    not_blank("name", &input.name)?;
    let erp = Erp::from_config()?;
    let path = format!("/api/vendors?name={}", encode(input.name.trim()));
    let response = send(erp.request(Method::Get, &path))?;
    let list: VendorList = parse(&response)?;
    pick_vendor(&input.name, list.vendors)
}

/// The one vendor the search found, and only if it is active.
///
/// Several matches are ambiguous unless exactly one of them has the very name asked
/// for (ignoring case and surrounding spaces).
fn pick_vendor(name: &str, mut vendors: Vec<Vendor>) -> Result<Vendor, Failure> {
    let vendor = match vendors.len() {
        0 => {
            return Err(Failure::new(
                "unknown_vendor",
                format!("no vendor named `{name}` in the ERP's vendor master"),
            )
            .with_details(json!({ "name": name })));
        }
        1 => vendors.remove(0),
        _ => {
            let same = |v: &Vendor| v.name.trim().eq_ignore_ascii_case(name.trim());
            if vendors.iter().filter(|v| same(v)).count() == 1 {
                vendors.into_iter().find(same).expect("counted one")
            } else {
                let candidates: Vec<Value> = vendors
                    .iter()
                    .map(|v| json!({ "id": v.id, "name": v.name }))
                    .collect();
                return Err(Failure::new(
                    "ambiguous_vendor",
                    format!(
                        "{} vendors in the ERP match `{name}`; name the vendor exactly",
                        vendors.len()
                    ),
                )
                .with_details(json!({ "name": name, "candidates": candidates })));
            }
        }
    };
    if !vendor.status.eq_ignore_ascii_case("active") {
        return Err(Failure::new(
            "vendor_blocked",
            format!(
                "vendor {} ({}) has status `{}` in the ERP; only active vendors are paid",
                vendor.name, vendor.id, vendor.status
            ),
        )
        .with_details(json!({ "id": vendor.id, "name": vendor.name, "status": vendor.status })));
    }
    Ok(vendor)
}

fn get_purchase_order(_ctx: &Call, input: PoNumberIn) -> Result<PurchaseOrder, Failure> {
    not_blank("po_number", &input.po_number)?;
    let erp = Erp::from_config()?;
    let path = format!("/api/purchase-orders/{}", encode(input.po_number.trim()));
    let response = send(erp.request(Method::Get, &path))?;
    parse(&response).map_err(|f| po_not_found(f, &input.po_number))
}

fn get_goods_receipt(_ctx: &Call, input: PoNumberIn) -> Result<GoodsReceipt, Failure> {
    not_blank("po_number", &input.po_number)?;
    let erp = Erp::from_config()?;
    let path = format!(
        "/api/purchase-orders/{}/receipts",
        encode(input.po_number.trim())
    );
    let response = send(erp.request(Method::Get, &path))?;
    parse(&response).map_err(|f| po_not_found(f, &input.po_number))
}

/// A `not_found` failure says which purchase order, in words and in `details.po_number`.
fn po_not_found(failure: Failure, po_number: &str) -> Failure {
    if failure.code != "not_found" {
        return failure;
    }
    let mut details = failure.details.unwrap_or_else(|| json!({}));
    details["po_number"] = json!(po_number);
    Failure::new(
        "not_found",
        format!("purchase order {po_number} was not found in the ERP"),
    )
    .with_details(details)
}

fn post_invoice(ctx: &Call, input: PostInvoiceIn) -> Result<Posted, Failure> {
    require_key(ctx)?;
    for (field, value) in [
        ("vendor_id", &input.vendor_id),
        ("invoice_number", &input.invoice_number),
        ("po_number", &input.po_number),
        ("currency", &input.currency),
    ] {
        not_blank(field, value)?;
    }
    let erp = Erp::from_config()?;
    // Every attempt of the step carries the same key, so a retry after a lost answer
    // gets the first posting back instead of a second one.
    let request = erp
        .request(Method::Post, "/api/invoices")
        .header("Idempotency-Key", &ctx.idempotency_key)
        .json(&input);
    let response = send(request)?;
    posted(&input, &response)
}

/// Posting without an idempotency key could post twice on a retry (and the ERP refuses
/// it): fail before sending anything.
fn require_key(ctx: &Call) -> Result<(), Failure> {
    if ctx.idempotency_key.trim().is_empty() {
        return Err(Failure::new(
            "missing_idempotency_key",
            "the call has no idempotency key; without one a retry could post the invoice \
             twice, so nothing was posted (run this action from a workflow step)",
        ));
    }
    Ok(())
}

/// The answer to `POST /api/invoices`: 201 (posted) or 200 (the same key again) carry
/// the posting; 409 means another posting of the same invoice exists.
fn posted(input: &PostInvoiceIn, response: &Response) -> Result<Posted, Failure> {
    match response.status {
        409 => {
            let error = response.error_message();
            let mut details = json!({
                "status": 409,
                "error": error,
                "vendor_id": input.vendor_id,
                "invoice_number": input.invoice_number,
            });
            // "invoice INV-1001 of V-001 is already posted as ERP-INV-000001"
            if let Some((_, id)) = error.rsplit_once(" posted as ") {
                details["existing_id"] = json!(id.trim().trim_end_matches('.'));
            }
            Err(Failure::new(
                "duplicate_invoice",
                format!(
                    "invoice {} of vendor {} is already posted in the ERP: {error}",
                    input.invoice_number, input.vendor_id
                ),
            )
            .with_details(details))
        }
        422 => {
            let error = response.error_message();
            Err(Failure::new(
                "invalid_invoice",
                format!("the ERP refused the invoice: {error}"),
            )
            .with_details(json!({ "status": 422, "error": error })))
        }
        _ => parse(response),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vendor(id: &str, name: &str, status: &str) -> Vendor {
        Vendor {
            id: id.into(),
            name: name.into(),
            iban: Some("DE89370400440532013000".into()),
            status: status.into(),
        }
    }

    fn response(status: u16, body: Value) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.to_string().into_bytes(),
        }
    }

    fn invoice() -> PostInvoiceIn {
        serde_json::from_value(json!({
            "vendor_id": "V-001", "invoice_number": "INV-1001", "po_number": "PO-5001",
            "date": "2026-11-02", "currency": "EUR", "total": 634.75, "tax": 99.75,
            "shipping": 10.0, "vendor": "Acme Supplies Ltd.",
            "lines": [{"sku": "WID-1", "description": "Widgets, blue", "quantity": 10, "unit_price": 12.5}]
        }))
        .unwrap()
    }

    #[test]
    fn names_and_numbers_are_encoded_for_urls() {
        assert_eq!(encode("Acme Supplies Ltd."), "Acme%20Supplies%20Ltd.");
        assert_eq!(encode("A&B/C?"), "A%26B%2FC%3F");
        assert_eq!(encode("Müller"), "M%C3%BCller");
    }

    #[test]
    fn one_active_vendor_is_found() {
        let v = pick_vendor(
            "acme",
            vec![vendor("V-001", "Acme Supplies Ltd.", "active")],
        );
        assert_eq!(v.unwrap().id, "V-001");
    }

    #[test]
    fn no_vendor_is_unknown_and_names_the_name() {
        let f = pick_vendor("Nobody GmbH", vec![]).unwrap_err();
        assert_eq!(f.code, "unknown_vendor");
        assert!(!f.retryable);
        assert_eq!(f.details, Some(json!({ "name": "Nobody GmbH" })));
    }

    #[test]
    fn several_vendors_are_ambiguous_unless_one_has_the_exact_name() {
        let both = vec![
            vendor("V-001", "Acme Ltd", "active"),
            vendor("V-002", "ACME LTD.", "active"),
        ];
        let f = pick_vendor("Acme", both.clone()).unwrap_err();
        assert_eq!(f.code, "ambiguous_vendor");
        assert!(!f.retryable);
        assert_eq!(f.details.unwrap()["candidates"][1]["id"], "V-002");
        assert_eq!(pick_vendor(" acme ltd. ", both).unwrap().id, "V-002");
    }

    #[test]
    fn a_blocked_vendor_is_refused() {
        let f = pick_vendor("Globex", vec![vendor("V-009", "Globex", "blocked")]).unwrap_err();
        assert_eq!(f.code, "vendor_blocked");
        assert!(!f.retryable);
        assert_eq!(f.details.unwrap()["status"], "blocked");
    }

    #[test]
    fn purchase_orders_parse_and_404_is_not_found() {
        let po: PurchaseOrder = parse(&response(
            200,
            json!({"number": "PO-5001", "vendor_id": "V-001", "vendor": "Acme", "currency": "EUR",
                   "status": "open", "lines": [{"sku": "WID-1", "description": "W", "quantity": 10, "unit_price": 12.5}]}),
        ))
        .unwrap();
        assert_eq!(po.lines[0].unit_price, 12.5);

        let missing = response(404, json!({"error": "purchase order PO-9 not found"}));
        let f = parse::<PurchaseOrder>(&missing)
            .map_err(|f| po_not_found(f, "PO-9"))
            .unwrap_err();
        assert_eq!(f.code, "not_found");
        assert!(!f.retryable);
        assert_eq!(f.details.as_ref().unwrap()["po_number"], "PO-9");
        assert_eq!(f.details.unwrap()["status"], 404);
    }

    #[test]
    fn outages_and_bad_keys_map_to_the_conventional_failures() {
        let f = parse::<GoodsReceipt>(&response(503, json!({"error": "ERP unavailable"})))
            .map_err(|f| po_not_found(f, "PO-1"))
            .unwrap_err();
        assert_eq!(
            (f.code.as_str(), f.retryable),
            ("upstream_unavailable", true)
        );
        assert!(f.message.contains("ERP unavailable"), "{f}");
        let f =
            parse::<GoodsReceipt>(&response(401, json!({"error": "unauthorized"}))).unwrap_err();
        assert_eq!((f.code.as_str(), f.retryable), ("unauthorized", false));
        let f = parse::<GoodsReceipt>(&response(200, json!({"nope": 1}))).unwrap_err();
        assert_eq!(f.code, "invalid_response");
    }

    #[test]
    fn invoices_post_as_the_contract_says() {
        let input = invoice();
        let body = serde_json::to_value(&input).unwrap();
        assert!(
            body.get("vendor").is_none(),
            "unknown fields are not forwarded"
        );
        assert_eq!(body["lines"][0]["sku"], "WID-1");
        assert_eq!(body["total"], 634.75);

        let ok = response(
            201,
            json!({"id": "ERP-INV-000001", "status": "posted", "total": 634.75}),
        );
        assert_eq!(
            posted(&input, &ok).unwrap(),
            Posted {
                id: "ERP-INV-000001".into(),
                status: "posted".into()
            }
        );
        let dup = response(
            409,
            json!({"error": "invoice INV-1001 of V-001 is already posted as ERP-INV-000001"}),
        );
        let f = posted(&input, &dup).unwrap_err();
        assert_eq!(f.code, "duplicate_invoice");
        assert!(!f.retryable);
        let details = f.details.unwrap();
        assert_eq!(details["existing_id"], "ERP-INV-000001");
        assert_eq!(details["invoice_number"], "INV-1001");
        let f = posted(&input, &response(422, json!({"error": "date is required"}))).unwrap_err();
        assert_eq!(f.code, "invalid_invoice");
        let f = posted(&input, &response(502, json!({}))).unwrap_err();
        assert!(f.retryable);
    }

    #[test]
    fn posting_needs_an_idempotency_key() {
        let input = serde_json::to_string(&invoice()).unwrap();
        let f = BatonPlugin::invoke(&Call::default(), "post-invoice", &input).unwrap_err();
        assert_eq!(
            (f.code.as_str(), f.retryable),
            ("missing_idempotency_key", false)
        );
        let call = Call {
            idempotency_key: "run-1/post".into(),
            ..Call::default()
        };
        // With a key it gets as far as the config.
        let f = BatonPlugin::invoke(&call, "post-invoice", &input).unwrap_err();
        assert_eq!(f.code, "invalid_config");
    }

    #[test]
    fn actions_check_input_then_config() {
        let call = Call::default();
        let f = BatonPlugin::invoke(&call, "find-vendor", r#"{"name": " "}"#).unwrap_err();
        assert_eq!(f.code, "invalid_input");
        // Natively nothing is configured: the failure names the missing key.
        let f = BatonPlugin::invoke(&call, "get-purchase-order", r#"{"po_number": "PO-1"}"#)
            .unwrap_err();
        assert_eq!(f.code, "invalid_config");
        assert_eq!(f.details, Some(json!({ "key": "base_url" })));
        let info = BatonPlugin::describe();
        assert_eq!(info.actions.len(), 4);
        assert_eq!(info.capabilities.secrets, ["api-key"]);
    }
}
