//! The event contract: every event type with the JSON Schema of its `data`, and the AsyncAPI
//! 3.0 document (`asyncapi.yaml`, written by `vectis events asyncapi`) generated from it.
//! A test validates the events the engine really produces against these schemas, and another
//! fails when `asyncapi.yaml` drifts from this file.

use serde_json::{Map, Value, json};

use super::envelope::topic_family;

/// The fields every `vectis.cart.*` change event carries.
const CART: &str = "cartId:uuid, customerId:uuid?, companyId:uuid?, locationId:uuid?, lineCount:integer, currency:string, total:integer";
const COMPANY: &str = "id:uuid, name:string, parentId:uuid?, rootId:uuid?, vatId:string?, taxExempt:boolean?, paymentTerms:string?, creditLimit:object?, customerGroupId:uuid?, status:string";
const LOCATION: &str = "companyId:uuid, locationId:uuid, name:string, countryCode:string, isShipping:boolean, isBilling:boolean";
const TOKEN: &str = "customerId:uuid, email:string, firstName:string?, expiresAt:datetime";
const VARIANT: &str =
    "id:uuid, productId:uuid, sku:string, name:string, status:string, prices:array, options:array";
const STOCK_LOCATION: &str =
    "id:uuid, code:string, name:string, countryCode:string?, active:boolean";
/// The fields every `vectis.quote.*` event carries.
const QUOTE: &str = "quoteId:uuid, companyId:uuid, customerId:uuid, locationId:uuid?, state:string, round:integer, currency:string, lineCount:integer, subtotal:integer, discount:integer, total:integer, expiresAt:datetime?, repId:uuid?";
/// The fields every `vectis.requisition_list.*` event carries.
const LIST: &str =
    "listId:uuid, companyId:uuid, ownerId:uuid, name:string, shared:boolean, lineCount:integer";
const ENDPOINT: &str = "id:uuid, url:string, description:string, eventTypes:array, enabled:boolean";

/// Every event type: `(type, aggregate, summary, data fields)`. Fields are
/// `name:type` with types `uuid`, `string`, `integer`, `boolean`, `array`, `object`, `datetime`,
/// `any`; `?` after the type allows null; `~` before the name makes the field optional. Data
/// objects may carry more fields than listed (additions are not breaking).
pub const EVENTS: &[(&str, &str, &str, &[&str])] = &[
    (
        "vectis.product.created",
        "product",
        "A product was created.",
        &[
            "id:uuid, slug:string, name:string, status:string, collectionIds:array, optionGroups:array",
        ],
    ),
    (
        "vectis.product.updated",
        "product",
        "Product fields changed; `changes` holds the new values.",
        &["id:uuid, changes:object"],
    ),
    (
        "vectis.product.archived",
        "product",
        "A product was archived.",
        &["id:uuid"],
    ),
    (
        "vectis.variant.created",
        "variant",
        "A variant was created (one event per variant of a bulk upsert).",
        &[VARIANT],
    ),
    (
        "vectis.variant.updated",
        "variant",
        "A variant changed; the full new state.",
        &[VARIANT],
    ),
    (
        "vectis.collection.created",
        "collection",
        "A collection was created.",
        &["id:uuid, slug:string, name:string, parentId:uuid?"],
    ),
    (
        "vectis.price_list.created",
        "price_list",
        "A price list was created.",
        &[
            "id:uuid, name:string, priority:integer, scope:string, scopeId:uuid?, currency:string, validFrom:datetime?, validUntil:datetime?",
        ],
    ),
    (
        "vectis.price_list.prices_set",
        "price_list",
        "Prices of SKUs on a price list were set (empty tiers remove a SKU).",
        &["id:uuid, prices:array"],
    ),
    (
        "vectis.staff_user.created",
        "staff_user",
        "A staff user was created.",
        &["id:uuid, email:string, roles:array"],
    ),
    (
        "vectis.staff_user.updated",
        "staff_user",
        "A staff user's name, roles or access changed; the full new state.",
        &["id:uuid, email:string, displayName:string, roles:array, active:boolean"],
    ),
    (
        "vectis.api_key.created",
        "api_key",
        "An API key was created.",
        &["id:uuid, name:string, permissions:array"],
    ),
    (
        "vectis.api_key.revoked",
        "api_key",
        "An API key was revoked.",
        &["id:uuid"],
    ),
    (
        "vectis.account.registered",
        "customer",
        "A customer registered.",
        &["id:uuid, email:string, firstName:string?, lastName:string?, emailVerified:boolean"],
    ),
    (
        "vectis.account.email_verification_requested",
        "customer",
        "A verification email is due (its one-time token goes only into the email).",
        &[TOKEN],
    ),
    (
        "vectis.account.email_verified",
        "customer",
        "A customer verified their email address.",
        &["id:uuid, email:string"],
    ),
    (
        "vectis.account.password_reset_requested",
        "customer",
        "A password reset email is due (its one-time token goes only into the email).",
        &[TOKEN],
    ),
    (
        "vectis.account.password_changed",
        "customer",
        "A customer's password changed.",
        &["id:uuid"],
    ),
    (
        "vectis.account.address_saved",
        "customer",
        "An address was added or changed.",
        &["customerId:uuid, addressId:uuid, ~countryCode:string"],
    ),
    (
        "vectis.account.address_deleted",
        "customer",
        "An address was deleted.",
        &["customerId:uuid, addressId:uuid"],
    ),
    (
        "vectis.account.customer_group_created",
        "customer_group",
        "A customer group was created.",
        &["id:uuid, code:string, name:string"],
    ),
    (
        "vectis.account.customer_group_changed",
        "customer",
        "A customer moved to another customer group.",
        &["id:uuid, customerGroupId:uuid?"],
    ),
    (
        "vectis.company.created",
        "company",
        "A company (or division) was created.",
        &[COMPANY],
    ),
    (
        "vectis.company.updated",
        "company",
        "A company changed; the full new state.",
        &[COMPANY],
    ),
    (
        "vectis.company.location_added",
        "company",
        "A location was added to a company.",
        &[LOCATION],
    ),
    (
        "vectis.company.location_updated",
        "company",
        "A company location changed.",
        &[LOCATION],
    ),
    (
        "vectis.company.user_invited",
        "company",
        "Someone was invited to a company (the one-time token goes only into the email).",
        &[
            "companyId:uuid, companyName:string, invitationId:uuid, email:string, roles:array, expiresAt:datetime",
        ],
    ),
    (
        "vectis.company.user_joined",
        "company",
        "A customer joined a company.",
        &["companyId:uuid, customerId:uuid, roles:array"],
    ),
    (
        "vectis.company.user_updated",
        "company",
        "A company user's roles, locations or spending limit changed.",
        &[
            "companyId:uuid, customerId:uuid, roles:array, locationIds:array, spendingLimit:any, monthlySpendingLimit:any",
        ],
    ),
    (
        "vectis.company.user_removed",
        "company",
        "A customer left a company.",
        &["companyId:uuid, customerId:uuid"],
    ),
    (
        "vectis.company.role_created",
        "company",
        "A custom company role was created.",
        &["companyId:uuid, code:string, name:string, permissions:array"],
    ),
    (
        "vectis.company.sales_rep_assigned",
        "company",
        "A sales rep was assigned to a company.",
        &["companyId:uuid, staffUserId:uuid"],
    ),
    (
        "vectis.company.sales_rep_unassigned",
        "company",
        "A sales rep was unassigned from a company.",
        &["companyId:uuid, staffUserId:uuid"],
    ),
    (
        "vectis.coupon.created",
        "coupon",
        "A coupon was created.",
        &[
            "id:uuid, code:string, kind:string, percentBasisPoints:integer?, amountOff:integer?, currency:string?, minOrder:integer?, active:boolean",
        ],
    ),
    (
        "vectis.company.approval_rule_saved",
        "approval_rule",
        "A company's approval rule was created or changed.",
        &["id:uuid, companyId:uuid, name:string, active:boolean, condition:object, tiers:array"],
    ),
    (
        "vectis.company.approval_rule_deleted",
        "approval_rule",
        "A company's approval rule was deleted.",
        &["id:uuid, companyId:uuid"],
    ),
    (
        "vectis.quote.requested",
        "quote",
        "A company user asked for a quote for their cart's lines, at their own prices.",
        &[QUOTE, "comment:string?, requestedDeliveryDate:string?"],
    ),
    (
        "vectis.quote.updated",
        "quote",
        "A sales rep changed a quote's prices, discounts, quantities, expiry or note.",
        &[QUOTE],
    ),
    (
        "vectis.quote.sent",
        "quote",
        "A quote was sent to its buyer; its prices are frozen.",
        &[QUOTE, "comment:string?"],
    ),
    (
        "vectis.quote.renegotiation_requested",
        "quote",
        "The buyer asked for changes to a sent quote; it is back with the rep in a new round.",
        &[QUOTE, "comment:string"],
    ),
    (
        "vectis.quote.declined",
        "quote",
        "The buyer declined a sent quote.",
        &[QUOTE, "comment:string"],
    ),
    (
        "vectis.quote.accepted",
        "quote",
        "The buyer accepted a quote; it is being placed as order `orderId` at the quoted prices.",
        &[QUOTE, "orderId:uuid"],
    ),
    (
        "vectis.quote.reopened",
        "quote",
        "The payment of an accepted quote's order was not taken; the quote may be accepted again.",
        &[QUOTE, "reason:string"],
    ),
    (
        "vectis.quote.expired",
        "quote",
        "A sent quote passed its expiry without an answer.",
        &[QUOTE],
    ),
    (
        "vectis.requisition_list.created",
        "requisition_list",
        "A company user created a requisition list.",
        &[LIST],
    ),
    (
        "vectis.requisition_list.updated",
        "requisition_list",
        "A requisition list was renamed, described, shared or unshared.",
        &[LIST],
    ),
    (
        "vectis.requisition_list.lines_changed",
        "requisition_list",
        "Lines of a requisition list were added, changed or removed.",
        &[LIST],
    ),
    (
        "vectis.requisition_list.deleted",
        "requisition_list",
        "A requisition list was deleted.",
        &[LIST],
    ),
    (
        "vectis.order.placed",
        "order",
        "A cart was placed as an order: prices, taxes and addresses are frozen.",
        &[
            "orderId:uuid, code:string, customerId:uuid?, companyId:uuid?, locationId:uuid?, lineCount:integer, currency:string, total:integer, state:string, paymentMethod:string?, poNumber:string?, placedAt:datetime",
        ],
    ),
    (
        "vectis.order.state_changed",
        "order",
        "An order moved to another state of the order process.",
        &[
            "orderId:uuid, code:string?, from:string, to:string, reason:string?, companyId:uuid?, customerId:uuid?",
        ],
    ),
    (
        "vectis.order.payment_authorized",
        "order",
        "An order's payment was authorised (or, on account, the invoice issued).",
        &[
            "orderId:uuid, code:string?, paymentId:uuid, method:string?, amount:integer, currency:string",
        ],
    ),
    (
        "vectis.order.payment_declined",
        "order",
        "A payment was declined or the provider did not answer; the cart is editable again.",
        &["orderId:uuid, paymentId:uuid, method:string, state:string, message:string?"],
    ),
    (
        "vectis.order.payment_settled",
        "order",
        "An order's payment was taken (an invoice paid, a card captured).",
        &[
            "orderId:uuid, code:string?, paymentId:uuid, method:string, amount:integer, currency:string, from:string, to:string",
        ],
    ),
    (
        "vectis.order.payment_refunded",
        "order",
        "Part or all of a settled payment was paid back through its handler (`refundPayment`, cancelled lines or orders, a received return); `refunded` is the payment's total so far.",
        &[
            "orderId:uuid, code:string?, paymentId:uuid, refundId:uuid, kind:string, amount:integer, refunded:integer, currency:string, returnId:uuid?",
        ],
    ),
    (
        "vectis.order.payment_released",
        "order",
        "Part or all of an authorised payment (or an unpaid invoice) was released through its handler, after lines or the order were cancelled.",
        &[
            "orderId:uuid, code:string?, paymentId:uuid, refundId:uuid, kind:string, amount:integer, refunded:integer, currency:string, returnId:uuid?",
        ],
    ),
    (
        "vectis.order.refund_failed",
        "order",
        "The payment provider refused a refund or release; the amount counts as refundable again.",
        &[
            "orderId:uuid, code:string?, paymentId:uuid, refundId:uuid, kind:string, amount:integer, currency:string, returnId:uuid?, message:string",
        ],
    ),
    (
        "vectis.order.lines_cancelled",
        "order",
        "Units of an order's lines were cancelled before they shipped: their stock was released and `amount` less is charged (`total` is the order's new total).",
        &[
            "orderId:uuid, code:string?, lines:array, quantity:integer, amount:integer, total:integer, currency:string, reason:string?",
        ],
    ),
    (
        "vectis.order.return_requested",
        "order",
        "A buyer or staff asked to return shipped units, with a reason per line.",
        &["orderId:uuid, code:string?, returnId:uuid, lines:array"],
    ),
    (
        "vectis.order.approval_requested",
        "order",
        "An order was held in PendingApproval: the approvals it needs (rules of the buyer's company and its parents, spending limits), tier by tier.",
        &[
            "orderId:uuid, code:string?, companyId:uuid?, locationId:uuid?, customerId:uuid?, total:integer, currency:string, requirements:array",
        ],
    ),
    (
        "vectis.order.approval_tier_opened",
        "order",
        "An approval opened the next tier of one or more requirements of a held order (`requirements`: each from its newly open tier on).",
        &[
            "orderId:uuid, code:string?, companyId:uuid?, locationId:uuid?, customerId:uuid?, total:integer, currency:string, requirements:array",
        ],
    ),
    (
        "vectis.order.approval_decided",
        "order",
        "An approver approved or rejected a held order (`steps`: the requirements and tiers it counted for; `flowState`: Pending, Approved or Rejected). Approved orders then move to Placed, rejected ones to Cancelled.",
        &[
            "orderId:uuid, code:string?, approverId:uuid, decision:string, comment:string?, steps:array, flowState:string",
        ],
    ),
    (
        "vectis.order.return_declined",
        "order",
        "Staff declined a requested return; its units may be returned again.",
        &["orderId:uuid, code:string?, returnId:uuid, reason:string?"],
    ),
    (
        "vectis.order.return_received",
        "order",
        "A return arrived: each line restocked at a location or written off, and `refund` paid back.",
        &[
            "orderId:uuid, code:string?, returnId:uuid, lines:array, refund:integer, currency:string",
        ],
    ),
    (
        "vectis.cart.created",
        "order",
        "A cart was created (an order in its first state).",
        &["cartId:uuid, customerId:uuid?, companyId:uuid?, locationId:uuid?, currency:string"],
    ),
    (
        "vectis.cart.lines_added",
        "order",
        "Lines were added (or merged into existing lines).",
        &[CART, "lines:array"],
    ),
    (
        "vectis.cart.lines_updated",
        "order",
        "Line quantities were set (0 removes).",
        &[CART, "lines:array"],
    ),
    (
        "vectis.cart.lines_removed",
        "order",
        "Lines were removed.",
        &[CART, "lineIds:array"],
    ),
    (
        "vectis.cart.cleared",
        "order",
        "Every line was removed.",
        &[CART],
    ),
    ("vectis.cart.updated", "order", "A cart changed.", &[CART]),
    (
        "vectis.cart.coupon_applied",
        "order",
        "A coupon was applied.",
        &[CART, "code:string"],
    ),
    (
        "vectis.cart.coupon_removed",
        "order",
        "A coupon was removed.",
        &[CART, "code:string"],
    ),
    (
        "vectis.cart.shipping_address_set",
        "order",
        "The ship-to address was set.",
        &[CART, "countryCode:string"],
    ),
    (
        "vectis.cart.shipping_method_set",
        "order",
        "The shipping method was chosen.",
        &[CART, "method:string"],
    ),
    (
        "vectis.webhook_endpoint.created",
        "webhook_endpoint",
        "A webhook endpoint was registered.",
        &[ENDPOINT],
    ),
    (
        "vectis.webhook_endpoint.updated",
        "webhook_endpoint",
        "A webhook endpoint changed.",
        &[ENDPOINT],
    ),
    (
        "vectis.webhook_endpoint.deleted",
        "webhook_endpoint",
        "A webhook endpoint was deleted.",
        &["id:uuid"],
    ),
    (
        "vectis.webhook_endpoint.disabled",
        "webhook_endpoint",
        "A webhook endpoint was disabled after repeated failures.",
        &["id:uuid, url:string, reason:string"],
    ),
    (
        "vectis.order.shipped",
        "order",
        "Lines of an order left a stock location (`complete` when every unit has shipped); the order moved to PartiallyShipped or Shipped.",
        &[
            "orderId:uuid, code:string?, shipmentId:uuid, locationId:uuid, carrier:string?, trackingNumber:string?, lineCount:integer, quantity:integer, complete:boolean, from:string, to:string",
        ],
    ),
    (
        "vectis.order.shipment_delivered",
        "order",
        "A shipment of an order arrived (others are still on their way).",
        &["orderId:uuid, code:string?, shipmentId:uuid"],
    ),
    (
        "vectis.order.delivered",
        "order",
        "The last shipment of a fully shipped order arrived; the order is Delivered.",
        &["orderId:uuid, code:string?, shipmentId:uuid, from:string, to:string"],
    ),
    (
        "vectis.inventory.location_created",
        "stock_location",
        "A stock location (warehouse) was created.",
        &[STOCK_LOCATION],
    ),
    (
        "vectis.inventory.location_updated",
        "stock_location",
        "A stock location was renamed, deactivated or reactivated.",
        &[STOCK_LOCATION],
    ),
    (
        "vectis.inventory.adjusted",
        "stock_level",
        "The quantity on hand of a variant at a location changed (`kind`: adjustment, import, inbound, shipment, return); one event per stock level.",
        &[
            "levelId:uuid, variantId:uuid, sku:string, locationId:uuid, location:string, onHand:integer, reserved:integer, available:integer, change:integer, kind:string, reason:string?",
        ],
    ),
    (
        "vectis.inventory.low_stock",
        "stock_level",
        "The available stock of a variant at a location fell to the tenant's low-stock threshold (`status` low) or to zero (`status` out).",
        &[
            "levelId:uuid, variantId:uuid, sku:string, locationId:uuid, location:string, onHand:integer, reserved:integer, available:integer, threshold:integer, status:string",
        ],
    ),
    (
        "vectis.inventory.backorder_policy_set",
        "stock_policy",
        "A variant's backorder policy changed (`backorder`: deny, allow, limit).",
        &["variantId:uuid, sku:string, backorder:string, limit:integer?"],
    ),
    (
        "vectis.inventory.reserved",
        "stock_reservation",
        "Stock was reserved for an order (or a cart at checkout, until `expiresAt`), replacing what it held before when `replaced`; one event per order with every line's location and quantity (subject: the order id).",
        &["orderId:uuid, expiresAt:datetime?, replaced:boolean, lines:array"],
    ),
    (
        "vectis.inventory.released",
        "stock_reservation",
        "Everything an order still held was released (cancelled, back to its cart, or a checkout reservation expired).",
        &["orderId:uuid, reason:string, lines:array"],
    ),
];

fn field_schema(kind: &str) -> Value {
    let (kind, nullable) = match kind.strip_suffix('?') {
        Some(kind) => (kind, true),
        None => (kind, false),
    };
    let mut schema = match kind {
        "uuid" => json!({ "type": "string", "format": "uuid" }),
        "datetime" => json!({ "type": "string", "format": "date-time" }),
        "string" | "integer" | "boolean" | "array" | "object" => json!({ "type": kind }),
        _ => json!({}),
    };
    if nullable && let Some(t) = schema.get("type").cloned() {
        schema["type"] = json!([t, "null"]);
    }
    schema
}

/// The JSON Schema of the `data` of `event_type`, if it is a known type.
pub fn data_schema(event_type: &str) -> Option<Value> {
    let (_, _, _, groups) = EVENTS.iter().find(|(t, ..)| *t == event_type)?;
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in groups.iter().flat_map(|g| g.split(',')) {
        let (name, kind) = field.trim().split_once(':')?;
        let (name, optional) = match name.strip_prefix('~') {
            Some(name) => (name, true),
            None => (name, false),
        };
        properties.insert(name.to_owned(), field_schema(kind));
        if !optional {
            required.push(json!(name));
        }
    }
    Some(json!({ "type": "object", "properties": properties, "required": required }))
}

/// The JSON Schema of the CloudEvents envelope.
pub fn envelope_schema() -> Value {
    json!({
        "type": "object",
        "required": ["specversion", "id", "source", "type", "subject", "time", "datacontenttype",
                     "dataschema", "tenantid", "aggregatetype", "sequence", "position", "data"],
        "properties": {
            "specversion": { "const": "1.0" },
            "id": { "type": "string", "format": "uuid", "description": "Event id (UUID v7): the idempotency key; `webhook-id` of webhooks." },
            "source": { "type": "string", "pattern": "^/vectis/tenants/", "description": "`/vectis/tenants/{tenant id}`." },
            "type": { "type": "string", "pattern": "^vectis\\.", "description": "Event type." },
            "subject": { "type": "string", "format": "uuid", "description": "Aggregate id; the Kafka key." },
            "time": { "type": "string", "format": "date-time" },
            "datacontenttype": { "const": "application/json" },
            "dataschema": { "type": "string", "pattern": "^urn:vectis:event:" },
            "tenantid": { "type": "string", "format": "uuid" },
            "aggregatetype": { "type": "string" },
            "sequence": { "type": "integer", "minimum": 1, "description": "Position in the aggregate's history; grows by one per change." },
            "position": { "type": "integer", "minimum": 1, "description": "Position in the engine's outbox (for `vectis events replay --from-position`)." },
            "actorid": { "type": "string", "format": "uuid", "description": "Who caused the change." },
            "actingstaffid": { "type": "string", "format": "uuid", "description": "A sales rep acting for `actorid`." },
            "data": { "type": "object" }
        }
    })
}

/// The AsyncAPI 3.0 document.
pub fn asyncapi() -> Value {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for family in ["orders", "inventory", "accounts", "catalog"] {
        let mut channel_messages = Map::new();
        for (event_type, aggregate, _, _) in EVENTS {
            if topic_family(aggregate) != family {
                continue;
            }
            channel_messages.insert(
                (*event_type).to_owned(),
                json!({ "$ref": format!("#/components/messages/{event_type}") }),
            );
        }
        channels.insert(
            family.to_owned(),
            json!({
                "address": format!("vectis.{family}"),
                "description": format!("Events of the `{family}` aggregates, keyed by aggregate id (per-aggregate order)."),
                "messages": channel_messages,
            }),
        );
        operations.insert(
            format!("receive_{family}"),
            json!({ "action": "receive", "channel": { "$ref": format!("#/channels/{family}") } }),
        );
    }
    channels.insert(
        "dlq".into(),
        json!({
            "address": "vectis.dlq",
            "description": "Dead letters: handler runs of `vectis-consumer` that exhausted their retries.",
            "messages": { "deadLetter": { "$ref": "#/components/messages/deadLetter" } },
        }),
    );
    operations.insert(
        "receive_dlq".into(),
        json!({ "action": "receive", "channel": { "$ref": "#/channels/dlq" } }),
    );
    channels.insert(
        "inboundInventory".into(),
        json!({
            "address": "vectis.inbound.inventory",
            "description": "Written by a WMS or ERP, read by `vectis-consumer`: absolute stock levels per SKU and stock location (`inventory.inbound_topic`). Applied once per `messageId`; a level keeps the newest `asOf` applied to it and ignores older messages; a message that cannot be applied changes nothing and goes to `vectis.inbound.inventory.dlq` with the reason.",
            "messages": { "inboundStockLevels": { "$ref": "#/components/messages/inboundStockLevels" } },
        }),
    );
    operations.insert(
        "send_inbound_inventory".into(),
        json!({ "action": "send", "channel": { "$ref": "#/channels/inboundInventory" } }),
    );
    channels.insert(
        "inboundInventoryDlq".into(),
        json!({
            "address": "vectis.inbound.inventory.dlq",
            "description": "Inbound stock messages that could not be applied, with the reason.",
            "messages": { "inboundDeadLetter": { "$ref": "#/components/messages/inboundDeadLetter" } },
        }),
    );
    operations.insert(
        "receive_inbound_inventory_dlq".into(),
        json!({ "action": "receive", "channel": { "$ref": "#/channels/inboundInventoryDlq" } }),
    );
    messages.insert(
        "inboundStockLevels".into(),
        json!({
            "name": "inboundStockLevels",
            "summary": "Absolute units on hand per SKU and stock location, counted at `asOf` (schema version 1).",
            "contentType": "application/json",
            "payload": {
                "type": "object",
                "additionalProperties": false,
                "required": ["schemaVersion", "messageId", "tenant", "asOf", "levels"],
                "properties": {
                    "schemaVersion": { "const": 1 },
                    "messageId": { "type": "string", "minLength": 1, "maxLength": 200, "description": "The sender's id: the idempotency key." },
                    "tenant": { "type": "string", "description": "The tenant's slug." },
                    "asOf": { "type": "string", "format": "date-time", "description": "When the levels were counted." },
                    "levels": {
                        "type": "array", "minItems": 1, "maxItems": 10000,
                        "items": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["sku", "location", "onHand"],
                            "properties": {
                                "sku": { "type": "string" },
                                "location": { "type": "string", "description": "A stock location code." },
                                "onHand": { "type": "integer", "minimum": 0 }
                            }
                        }
                    }
                }
            }
        }),
    );
    messages.insert(
        "inboundDeadLetter".into(),
        json!({
            "name": "inboundDeadLetter",
            "summary": "An inbound message that was not applied, with where it came from and why.",
            "contentType": "application/json",
            "payload": {
                "type": "object",
                "required": ["topic", "partition", "offset", "reason", "payload"],
                "properties": {
                    "topic": { "type": "string" },
                    "partition": { "type": "integer" },
                    "offset": { "type": "integer" },
                    "reason": { "type": "string" },
                    "payload": { "type": "string", "description": "The message as received." }
                }
            }
        }),
    );
    for (event_type, aggregate, summary, _) in EVENTS {
        messages.insert(
            (*event_type).to_owned(),
            json!({
                "name": event_type,
                "summary": summary,
                "contentType": "application/cloudevents+json",
                "x-aggregate": aggregate,
                "headers": { "$ref": "#/components/schemas/Headers" },
                "payload": {
                    "allOf": [
                        { "$ref": "#/components/schemas/Envelope" },
                        { "type": "object", "properties": { "type": { "const": event_type }, "data": data_schema(event_type) } }
                    ]
                }
            }),
        );
    }
    messages.insert(
        "deadLetter".into(),
        json!({
            "name": "deadLetter",
            "summary": "An event a handler could not apply, with the handler and its last error.",
            "contentType": "application/json",
            "payload": {
                "type": "object",
                "required": ["event", "handler", "error", "attempts", "deadAt"],
                "properties": {
                    "event": { "$ref": "#/components/schemas/Envelope" },
                    "handler": { "type": "string" },
                    "error": { "type": "string" },
                    "attempts": { "type": "integer" },
                    "deadAt": { "type": "string", "format": "date-time" }
                }
            }
        }),
    );
    let header = json!({ "type": "string" });
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Vectis domain events",
            "version": "1.0.0",
            "description": "Every state change of the Vectis engine as a CloudEvents 1.0 event (structured JSON), published at least once from a transactional outbox. Deduplicate on `id`; events of one aggregate share a partition and arrive in `sequence` order. Generated by `vectis events asyncapi`; see docs/events.md."
        },
        "servers": {
            "kafka": { "host": "localhost:9092", "protocol": "kafka", "description": "Any Kafka-protocol broker (Kafka, Redpanda)." }
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {
                "Envelope": envelope_schema(),
                "Headers": {
                    "type": "object",
                    "properties": {
                        "ce_id": header, "ce_type": header, "ce_source": header, "ce_subject": header,
                        "ce_time": header, "ce_tenantid": header, "ce_sequence": header, "ce_specversion": header
                    }
                }
            },
            "messages": messages
        }
    })
}

/// `value` as YAML (block style; strings are double-quoted JSON strings, which YAML reads as is).
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_yaml(value, 0, &mut out);
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

fn is_block(value: &Value) -> bool {
    matches!(value, Value::Array(a) if !a.is_empty())
        || matches!(value, Value::Object(o) if !o.is_empty())
}

fn write_yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                let key = if key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
                    && !key.starts_with(['-', '.'])
                {
                    key.clone()
                } else {
                    serde_json::to_string(key).unwrap_or_default()
                };
                if is_block(item) {
                    out.push_str(&format!("{pad}{key}:\n"));
                    write_yaml(item, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}{key}: {}\n", scalar(item)));
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_block(item) {
                    out.push_str(&format!("{pad}-\n"));
                    write_yaml(item, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}
