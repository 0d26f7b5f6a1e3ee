//! The ERP stand-in: vendors, purchase orders and goods receipts from a seed file,
//! idempotent invoice posting, and per-PO outages.

use crate::http::{self, Auth, Kind, check_fields, error, idempotency_key, json, number};
use crate::invoice_text::{Line, name_key};
use crate::state::{ErpBook, Persisted, Step};
use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

/// The seed used without `--erp-seed`: the vendors and POs of the invoice demo.
const DEFAULT_SEED: &str = include_str!("seed.json");

/// The ERP's master data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    vendors: Vec<Vendor>,
    #[serde(default)]
    purchase_orders: Vec<PurchaseOrder>,
    #[serde(default)]
    receipts: Vec<Receipt>,
}

#[derive(Debug, Deserialize)]
struct Vendor {
    id: String,
    name: String,
    #[serde(default)]
    iban: Option<String>,
    #[serde(default = "active")]
    status: String,
}

fn active() -> String {
    "active".into()
}

#[derive(Debug, Deserialize)]
struct PurchaseOrder {
    number: String,
    vendor_id: String,
    /// The vendor's name; taken from the vendor when the seed leaves it out.
    #[serde(default)]
    vendor: Option<String>,
    currency: String,
    #[serde(default = "open")]
    status: String,
    #[serde(default)]
    lines: Vec<Line>,
}

fn open() -> String {
    "open".into()
}

#[derive(Debug, Deserialize)]
struct Receipt {
    po_number: String,
    lines: Vec<ReceiptLine>,
}

#[derive(Debug, Deserialize)]
struct ReceiptLine {
    sku: String,
    quantity: f64,
}

impl Seed {
    /// Reads `path`, or the built-in seed; checks that POs and receipts refer to
    /// vendors and POs that exist.
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<Seed> {
        let (text, origin) = match path {
            Some(path) => (
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading ERP seed {}", path.display()))?,
                path.display().to_string(),
            ),
            None => (DEFAULT_SEED.to_owned(), "the built-in seed".to_owned()),
        };
        let mut seed: Seed = serde_json::from_str(&text)
            .with_context(|| format!("{origin} is not a valid ERP seed"))?;
        for po in &mut seed.purchase_orders {
            let Some(vendor) = seed.vendors.iter().find(|v| v.id == po.vendor_id) else {
                bail!(
                    "{origin}: {} names unknown vendor {}",
                    po.number,
                    po.vendor_id
                );
            };
            po.vendor.get_or_insert_with(|| vendor.name.clone());
        }
        for receipt in &seed.receipts {
            if !seed
                .purchase_orders
                .iter()
                .any(|p| p.number == receipt.po_number)
            {
                bail!("{origin}: a receipt names unknown PO {}", receipt.po_number);
            }
        }
        Ok(seed)
    }

    fn purchase_order(&self, number: &str) -> Option<&PurchaseOrder> {
        self.purchase_orders.iter().find(|p| p.number == number)
    }
}

impl Vendor {
    fn to_json(&self) -> Value {
        json!({ "id": self.id, "name": self.name, "iban": self.iban, "status": self.status })
    }
}

impl PurchaseOrder {
    fn to_json(&self) -> Value {
        let lines: Vec<Value> = self.lines.iter().map(Line::to_json).collect();
        json!({
            "number": self.number,
            "vendor_id": self.vendor_id,
            "vendor": self.vendor,
            "currency": self.currency,
            "status": self.status,
            "lines": lines,
        })
    }
}

/// The ERP: master data, posted invoices, and which POs are "down".
pub struct Erp {
    seed: Seed,
    book: Arc<Persisted<ErpBook>>,
    down: Mutex<BTreeSet<String>>,
}

impl Erp {
    /// An ERP over `seed` and `book`, with the POs in `outages` down from the start.
    pub fn new(seed: Seed, book: Arc<Persisted<ErpBook>>, outages: &[String]) -> Erp {
        Erp {
            seed,
            book,
            down: Mutex::new(outages.iter().cloned().collect()),
        }
    }

    fn is_down(&self, po_number: &str) -> bool {
        self.down
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(po_number)
    }

    /// The outage answer if `po_number` is down.
    fn outage(&self, po_number: &str) -> Option<Response> {
        self.is_down(po_number)
            .then(|| error(StatusCode::SERVICE_UNAVAILABLE, "ERP unavailable"))
    }
}

/// The ERP's routes: the API under `/api` (bearer key), control under `/control`.
pub fn router(erp: Arc<Erp>, auth: &Auth) -> Router {
    let api = Router::new()
        .route("/api/vendors", get(vendors))
        .route("/api/purchase-orders/{number}", get(purchase_order))
        .route("/api/purchase-orders/{number}/receipts", get(receipts))
        .route("/api/invoices", post(post_invoice).get(list_invoices));
    auth.guard(api)
        .route("/control/outage", post(set_outage))
        .fallback(http::not_found)
        .with_state(erp)
}

#[derive(Deserialize)]
struct VendorQuery {
    name: Option<String>,
}

/// Vendors whose name matches ignoring case, spaces and punctuation; all without `name`.
async fn vendors(State(erp): State<Arc<Erp>>, Query(query): Query<VendorQuery>) -> Response {
    let wanted = query.name.as_deref().map(name_key);
    let found: Vec<Value> = erp
        .seed
        .vendors
        .iter()
        .filter(|v| wanted.as_ref().is_none_or(|w| name_key(&v.name) == *w))
        .map(Vendor::to_json)
        .collect();
    json(StatusCode::OK, json!({ "vendors": found }))
}

fn po_not_found(number: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("purchase order {number} not found"),
    )
}

async fn purchase_order(State(erp): State<Arc<Erp>>, Path(number): Path<String>) -> Response {
    if let Some(down) = erp.outage(&number) {
        return down;
    }
    match erp.seed.purchase_order(&number) {
        Some(po) => json(StatusCode::OK, po.to_json()),
        None => po_not_found(&number),
    }
}

/// All goods receipts of a PO summed per SKU, in order of first arrival.
async fn receipts(State(erp): State<Arc<Erp>>, Path(po_number): Path<String>) -> Response {
    if let Some(down) = erp.outage(&po_number) {
        return down;
    }
    if erp.seed.purchase_order(&po_number).is_none() {
        return po_not_found(&po_number);
    }
    let mut summed: Vec<(String, f64)> = Vec::new();
    for line in erp
        .seed
        .receipts
        .iter()
        .filter(|r| r.po_number == po_number)
        .flat_map(|r| &r.lines)
    {
        match summed.iter_mut().find(|(sku, _)| *sku == line.sku) {
            Some((_, quantity)) => *quantity += line.quantity,
            None => summed.push((line.sku.clone(), line.quantity)),
        }
    }
    let lines: Vec<Value> = summed
        .into_iter()
        .map(|(sku, quantity)| json!({ "sku": sku, "quantity": number(quantity) }))
        .collect();
    json(
        StatusCode::OK,
        json!({ "po_number": po_number, "lines": lines }),
    )
}

/// The fields an invoice must carry, and their types.
const INVOICE_FIELDS: &[(&str, Kind)] = &[
    ("vendor_id", Kind::Str),
    ("invoice_number", Kind::Str),
    ("po_number", Kind::Str),
    ("date", Kind::Str),
    ("currency", Kind::Str),
    ("total", Kind::Num),
    ("tax", Kind::Num),
    ("shipping", Kind::Num),
    ("lines", Kind::Arr),
];

/// Posts an invoice. Checks run in this order: key present (400), body JSON (400), PO
/// down (503), key seen (200, the first answer, body not compared), fields (422), same
/// vendor and invoice number already posted (409), then 201.
async fn post_invoice(State(erp): State<Arc<Erp>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(key) = idempotency_key(&headers) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the Idempotency-Key header is required",
        );
    };
    let body = match http::object_body(&body) {
        Ok(body) => body,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if let Some(down) = body
        .get("po_number")
        .and_then(Value::as_str)
        .and_then(|po| erp.outage(po))
    {
        return down;
    }
    let answer = erp.book.update(|book| {
        if let Some(id) = book.keys.get(&key) {
            let posted = book
                .invoices
                .iter()
                .find(|i| i["id"] == id.as_str())
                .cloned();
            return Step::Keep(json(StatusCode::OK, posted.unwrap_or(Value::Null)));
        }
        if let Some(problem) = check_fields(&body, INVOICE_FIELDS) {
            return Step::Keep(error(StatusCode::UNPROCESSABLE_ENTITY, problem));
        }
        let (vendor, number) = (&body["vendor_id"], &body["invoice_number"]);
        if let Some(posted) = book
            .invoices
            .iter()
            .find(|i| i["vendor_id"] == *vendor && i["invoice_number"] == *number)
        {
            let message = format!(
                "invoice {} of {} is already posted as {}",
                text(number),
                text(vendor),
                text(&posted["id"])
            );
            return Step::Keep(error(StatusCode::CONFLICT, message));
        }
        let id = format!("ERP-INV-{:06}", book.invoices.len() + 1);
        let mut invoice = body.clone();
        invoice.insert("id".into(), id.clone().into());
        invoice.insert("status".into(), "posted".into());
        let invoice = Value::Object(invoice);
        book.invoices.push(invoice.clone());
        book.keys.insert(key.clone(), id);
        Step::Save(json(StatusCode::CREATED, invoice))
    });
    answer.unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

async fn list_invoices(State(erp): State<Arc<Erp>>) -> Response {
    let invoices = erp.book.read(|book| book.invoices.clone());
    json(StatusCode::OK, json!({ "invoices": invoices }))
}

#[derive(Deserialize)]
struct Outage {
    po_number: String,
    #[serde(default = "yes")]
    down: bool,
}

fn yes() -> bool {
    true
}

/// `POST /control/outage {"po_number", "down"}`: answers the POs now down.
async fn set_outage(State(erp): State<Arc<Erp>>, body: Bytes) -> Response {
    let outage: Outage = match serde_json::from_slice(&body) {
        Ok(outage) => outage,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"po_number\", \"down\"}}: {e}"),
            );
        }
    };
    let mut down = erp.down.lock().unwrap_or_else(PoisonError::into_inner);
    if outage.down {
        down.insert(outage.po_number);
    } else {
        down.remove(&outage.po_number);
    }
    json(StatusCode::OK, json!({ "down": *down }))
}
