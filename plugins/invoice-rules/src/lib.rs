//! `invoice-rules`: business rules for supplier invoices. The matching logic lives in
//! [`matching`], which is plain Rust and unit-tested on the host; see README.md for the
//! exact semantics.

pub mod matching;

baton_sdk::rule! {
    name: "invoice-rules", version: "0.1.0",
    description: "Supplier invoice checks: three-way match of invoice, purchase order and goods receipt",
    rules: {
        "three-way-match" => matching::three_way_match:
            "Match the invoice against the purchase order and the goods receipt"
            outcomes ["approve", "review", "reject"],
    }
}
