//! Requisition lists GraphQL: the caller's and their company's lists with their lines, and
//! creating, filling, changing, deleting and adding a list to the cart.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::entity::{line, list};
use super::service::{LineSet, ListOutcome, MAX_LIST_LINES, Source};
use crate::cart::graphql::{CartLineInput, CartPayload, line_input};
use crate::cart::quick_order::parse_quick_order;
use crate::catalog::graphql::Variant;
use crate::catalog::loader::{VariantById, catalog_loader};
use crate::error::{AppError, ItemError};
use crate::graphql::connection::{IdCursor, connection, page_request};
use crate::graphql::context::{caller, services};
use crate::graphql::ids::{id, parse_id};
use crate::graphql::scalars::Int64;

/// A named list of SKUs and quantities to buy again.
pub struct RequisitionListObject(pub list::Model);

#[Object(name = "RequisitionList")]
impl RequisitionListObject {
    /// Id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Description.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Shared with the company (changed by users with `MANAGE_REQUISITION_LISTS`).
    async fn shared(&self) -> bool {
        self.0.shared
    }
    /// The company.
    async fn company_id(&self) -> ID {
        id(self.0.company_id)
    }
    /// The company user who made it.
    async fn owner_id(&self) -> ID {
        id(self.0.owner_id)
    }
    /// Lines.
    async fn line_count(&self) -> Int64 {
        Int64(self.0.line_count)
    }
    /// Version.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// Last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Lines in the order they were added; `first` takes up to 10,000.
    async fn lines(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100, desc = "Page size, 0-10000.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<IdCursor, RequisitionListLine, RequisitionListLineConnectionFields>>
    {
        let caller = caller(ctx)?;
        let request = page_request(first, after.as_deref(), MAX_LIST_LINES as u64)?;
        let rows = if request.first == 0 {
            Vec::new()
        } else {
            services(ctx)
                .requisition_lists
                .lines(caller.tenant, self.0.id, request)
                .await?
        };
        crate::catalog::graphql::preload_line_variants(
            ctx,
            rows.iter().map(|l| l.variant_id).collect(),
        )
        .await?;
        let page = request.page(rows, u64::try_from(self.0.line_count).unwrap_or(0));
        Ok(connection(
            &request,
            page,
            |l| l.id,
            RequisitionListLine,
            RequisitionListLineConnectionFields {
                total_count: self.0.line_count,
            },
        ))
    }
}

/// Beside the edges of a list's lines.
#[derive(SimpleObject)]
pub struct RequisitionListLineConnectionFields {
    /// Lines of the list.
    pub total_count: i64,
}

/// A line of a requisition list.
pub struct RequisitionListLine(pub line::Model);

#[Object]
impl RequisitionListLine {
    /// Id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// Quantity.
    async fn quantity(&self) -> Int64 {
        Int64(self.0.quantity)
    }
    /// The variant's id.
    async fn variant_id(&self) -> ID {
        id(self.0.variant_id)
    }
    /// The variant (its prices are the caller's own, as on catalog pages).
    async fn variant(&self, ctx: &Context<'_>) -> Result<Option<Variant>> {
        Ok(catalog_loader(ctx)?
            .load_one(VariantById(self.0.variant_id))
            .await?
            .map(Variant))
    }
}

/// What a list change did.
#[derive(SimpleObject)]
pub struct RequisitionListPayload {
    /// Whether it applied (all or nothing).
    pub applied: bool,
    /// Invalid items by their position in the input (for `text`, the line number - 1):
    /// `NOT_FOUND`, `ARCHIVED`, `VALIDATION`.
    pub errors: Vec<ItemError>,
    /// The list after the change.
    pub list: Option<RequisitionListObject>,
}

impl From<ListOutcome> for RequisitionListPayload {
    fn from(o: ListOutcome) -> Self {
        RequisitionListPayload {
            applied: o.applied,
            errors: o.errors,
            list: o.list.map(RequisitionListObject),
        }
    }
}

/// Where lines come from: give exactly one.
#[derive(InputObject, Default)]
pub struct RequisitionListSourceInput {
    /// Lines by SKU or variant id (up to 10,000).
    pub lines: Option<Vec<CartLineInput>>,
    /// Pasted text, one `SKU, quantity` per line (as `quickOrder`).
    pub text: Option<String>,
    /// The caller's cart.
    #[graphql(default = false)]
    pub from_cart: bool,
    /// An order the caller may see.
    pub from_order_id: Option<ID>,
}

/// Input of `createRequisitionList`.
#[derive(InputObject)]
pub struct CreateRequisitionListInput {
    /// Name (1-200 characters).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Share it with the company (`MANAGE_REQUISITION_LISTS`).
    #[graphql(default = false)]
    pub shared: bool,
    /// Lines to start with.
    pub source: Option<RequisitionListSourceInput>,
}

/// A quantity to set: by line id or SKU; 0 removes the line.
#[derive(InputObject)]
pub struct RequisitionListLineSetInput {
    /// The list line.
    pub line_id: Option<ID>,
    /// Or its SKU.
    pub sku: Option<String>,
    /// New quantity.
    pub quantity: Int64,
}

/// The parsed source, and for text the line numbers to report errors by.
fn source_of(input: RequisitionListSourceInput) -> Result<(Source, Vec<ItemError>, Vec<usize>)> {
    let given = usize::from(input.lines.is_some())
        + usize::from(input.text.is_some())
        + usize::from(input.from_cart)
        + usize::from(input.from_order_id.is_some());
    if given != 1 {
        return Err(AppError::validation(
            "source",
            "give one of lines, text, fromCart, fromOrderId",
        )
        .into());
    }
    if let Some(lines) = input.lines {
        let lines = lines.into_iter().map(line_input).collect();
        return Ok((Source::Lines(lines), Vec::new(), Vec::new()));
    }
    if let Some(text) = input.text {
        let parsed = parse_quick_order(&text)?;
        return Ok((
            Source::Lines(parsed.lines),
            parsed.errors,
            parsed.line_numbers,
        ));
    }
    if let Some(order) = input.from_order_id {
        return Ok((
            Source::Order(parse_id("fromOrderId", &order)?),
            Vec::new(),
            Vec::new(),
        ));
    }
    Ok((Source::Cart, Vec::new(), Vec::new()))
}

/// Text errors by line number: parse errors and the parsed lines' errors together.
fn by_line(mut out: ListOutcome, parse_errors: Vec<ItemError>, numbers: &[usize]) -> ListOutcome {
    if numbers.is_empty() && parse_errors.is_empty() {
        return out;
    }
    for e in out.errors.iter_mut() {
        if let Some(n) = numbers.get(e.index as usize) {
            e.index = *n as i32;
        }
    }
    out.errors.extend(parse_errors);
    out.errors.sort_by_key(|e| e.index);
    out
}

/// Requisition list queries.
#[derive(Default)]
pub struct RequisitionListsQuery;

#[Object]
impl RequisitionListsQuery {
    /// The caller's lists and their company's shared ones, by name (staff with
    /// `COMPANY_READ` name the company).
    async fn requisition_lists(
        &self,
        ctx: &Context<'_>,
        company_id: Option<ID>,
    ) -> Result<Vec<RequisitionListObject>> {
        let caller = caller(ctx)?;
        let company = company_id
            .as_ref()
            .map(|c| parse_id("companyId", c))
            .transpose()?;
        Ok(services(ctx)
            .requisition_lists
            .list(caller, company)
            .await?
            .into_iter()
            .map(RequisitionListObject)
            .collect())
    }

    /// A list the caller may see.
    async fn requisition_list(&self, ctx: &Context<'_>, id: ID) -> Result<RequisitionListObject> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(RequisitionListObject(
            services(ctx).requisition_lists.get(caller, id).await?,
        ))
    }
}

/// Requisition list mutations.
#[derive(Default)]
pub struct RequisitionListsMutation;

#[Object]
impl RequisitionListsMutation {
    /// Creates a list (a company user with `PLACE_ORDERS`; shared: `MANAGE_REQUISITION_LISTS`),
    /// filled from lines, pasted text, the cart or an order. All or nothing.
    async fn create_requisition_list(
        &self,
        ctx: &Context<'_>,
        input: CreateRequisitionListInput,
    ) -> Result<RequisitionListPayload> {
        let caller = caller(ctx)?;
        crate::requisition_lists::service::RequisitionListsService::check_caller(caller)?;
        let (source, parse_errors, numbers) = match input.source {
            Some(s) => {
                let (source, errors, numbers) = source_of(s)?;
                (Some(source), errors, numbers)
            }
            None => (None, Vec::new(), Vec::new()),
        };
        if !parse_errors.is_empty() {
            return Ok(RequisitionListPayload {
                applied: false,
                errors: parse_errors,
                list: None,
            });
        }
        let out = services(ctx)
            .requisition_lists
            .create(
                caller,
                &input.name,
                input.description.as_deref(),
                input.shared,
                source,
            )
            .await?;
        Ok(by_line(out, Vec::new(), &numbers).into())
    }

    /// Adds lines to a list (its owner; a shared list: `MANAGE_REQUISITION_LISTS`); quantities
    /// of SKUs already on it add up. All or nothing.
    async fn add_requisition_list_lines(
        &self,
        ctx: &Context<'_>,
        id: ID,
        source: RequisitionListSourceInput,
    ) -> Result<RequisitionListPayload> {
        let caller = caller(ctx)?;
        crate::requisition_lists::service::RequisitionListsService::check_caller(caller)?;
        let id = parse_id("id", &id)?;
        let (source, parse_errors, numbers) = source_of(source)?;
        if !parse_errors.is_empty() {
            return Ok(RequisitionListPayload {
                applied: false,
                errors: parse_errors,
                list: Some(RequisitionListObject(
                    services(ctx).requisition_lists.get(caller, id).await?,
                )),
            });
        }
        let out = services(ctx)
            .requisition_lists
            .add(caller, id, source)
            .await?;
        Ok(by_line(out, Vec::new(), &numbers).into())
    }

    /// Sets quantities on a list (as `addRequisitionListLines`); 0 removes a line.
    async fn set_requisition_list_lines(
        &self,
        ctx: &Context<'_>,
        id: ID,
        lines: Vec<RequisitionListLineSetInput>,
    ) -> Result<RequisitionListPayload> {
        let caller = caller(ctx)?;
        crate::requisition_lists::service::RequisitionListsService::check_caller(caller)?;
        let id = parse_id("id", &id)?;
        let lines = lines
            .into_iter()
            .map(|l| {
                Ok(LineSet {
                    line_id: l
                        .line_id
                        .as_ref()
                        .map(|i| parse_id("lineId", i))
                        .transpose()?,
                    sku: l.sku,
                    quantity: l.quantity.0,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        Ok(services(ctx)
            .requisition_lists
            .set(caller, id, lines)
            .await?
            .into())
    }

    /// Renames, describes or shares a list (sharing and unsharing: `MANAGE_REQUISITION_LISTS`).
    async fn update_requisition_list(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: Option<String>,
        description: Option<String>,
        shared: Option<bool>,
    ) -> Result<RequisitionListObject> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(RequisitionListObject(
            services(ctx)
                .requisition_lists
                .update(
                    caller,
                    id,
                    name.as_deref(),
                    description.as_deref().map(Some),
                    shared,
                )
                .await?,
        ))
    }

    /// Deletes a list (as any change to it).
    async fn delete_requisition_list(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(services(ctx).requisition_lists.delete(caller, id).await?)
    }

    /// Adds a list (or its lines `lineIds`) to the caller's cart in one call: lines that
    /// cannot be bought now (archived, no price) are reported in `errors` by their position
    /// among the lines added; the others are added.
    async fn add_requisition_list_to_cart(
        &self,
        ctx: &Context<'_>,
        id: ID,
        line_ids: Option<Vec<ID>>,
    ) -> Result<CartPayload> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        let line_ids = line_ids
            .map(|ids| {
                ids.iter()
                    .map(|i| parse_id("lineIds", i))
                    .collect::<Result<Vec<_>, AppError>>()
            })
            .transpose()?;
        let outcome = services(ctx)
            .requisition_lists
            .add_to_cart(caller, id, line_ids)
            .await?;
        if let Ok(loader) = catalog_loader(ctx) {
            crate::catalog::loader::clear(loader);
        }
        Ok(outcome.into())
    }
}
