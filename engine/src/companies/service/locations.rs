//! Company locations: ship-to and bill-to sites; their commercial terms are the merchant's.

use std::collections::HashSet;

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use super::*;

impl CompaniesService {
    /// Locations of companies (for loaders), ordered by name.
    pub async fn locations(
        &self,
        tenant: TenantId,
        companies: Vec<Uuid>,
    ) -> AppResult<Vec<location::Model>> {
        let backend = self.core.db.backend();
        self.core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(location::Entity::find()
                        .filter(location::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (location::Entity, location::Column::CompanyId),
                            companies,
                        ))
                        .order_by_asc(location::Column::Name)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }

    /// Adds a location to a company, or replaces location `id`.
    pub async fn save_location(
        &self,
        caller: &Caller,
        company_id: Uuid,
        id: Option<Uuid>,
        input: LocationInput,
    ) -> AppResult<location::Model> {
        let mut uow = self.core.begin_for(caller).await?;
        let access = self
            .access(
                uow.tx(),
                caller,
                company_id,
                Need::Write(CompanyPermission::ManageLocations),
            )
            .await?;
        let name = text::name("name", &input.name, 200)?;
        let postal = input.address.validated()?;
        let mut vat_id = vat_field("vatId", input.vat_id)?;
        let mut tax_exempt = input.tax_exempt;
        let mut payment_terms = input.payment_terms.map(|t| t.code().to_owned());
        let mut warehouse = input.preferred_stock_location_id;
        let current = match id {
            Some(id) => Some(
                crate::db::lock::lock::<location::Entity, _>(uow.tx(), caller.tenant, id)
                    .await?
                    .filter(|l| l.company_id == company_id)
                    .ok_or_else(|| AppError::not_found("CompanyLocation", id))?,
            ),
            None => None,
        };
        // Tax treatment and payment terms are commercial terms: the merchant's (staff with
        // `COMPANY_WRITE`). A company user leaves them out (they stay as they are) and cannot
        // set or change them.
        if !access.grants.is_staff() {
            let (cur_vat, cur_exempt, cur_terms) = current
                .as_ref()
                .map(|l| (l.vat_id.clone(), l.tax_exempt, l.payment_terms.clone()))
                .unwrap_or_default();
            let cur_warehouse = current.as_ref().and_then(|l| l.preferred_stock_location_id);
            let changes = |given: bool, same: bool| given && !same;
            if changes(warehouse.is_some(), warehouse == cur_warehouse) {
                return Err(AppError::Rejected {
                    code: code::FORBIDDEN,
                    message: "a location's preferred warehouse is set by the merchant \
                              (COMPANY_WRITE)"
                        .into(),
                });
            }
            warehouse = cur_warehouse;
            if changes(vat_id.is_some(), vat_id == cur_vat)
                || changes(tax_exempt.is_some(), tax_exempt == cur_exempt)
                || changes(payment_terms.is_some(), payment_terms == cur_terms)
            {
                return Err(AppError::Rejected {
                    code: code::FORBIDDEN,
                    message: "a location's VAT id, tax exemption and payment terms are set by \
                              the merchant (COMPANY_WRITE)"
                        .into(),
                });
            }
            vat_id = cur_vat;
            tax_exempt = cur_exempt;
            payment_terms = cur_terms;
        }
        let now = Utc::now();
        let location_id = id.unwrap_or_else(Uuid::now_v7);
        let model = location::ActiveModel {
            id: Set(location_id),
            tenant_id: Set(caller.tenant.0),
            company_id: Set(company_id),
            name: Set(name),
            is_shipping: Set(input.is_shipping),
            is_billing: Set(input.is_billing),
            vat_id: Set(vat_id),
            tax_exempt: Set(tax_exempt),
            payment_terms: Set(payment_terms),
            status: Set("active".into()),
            version: Set(1),
            street_line1: Set(postal.street_line1),
            street_line2: Set(postal.street_line2),
            city: Set(postal.city),
            postal_code: Set(postal.postal_code),
            region: Set(postal.region),
            country_code: Set(postal.country_code),
            created_at: Set(now),
            updated_at: Set(now),
            preferred_stock_location_id: Set(
                warehouse.or(current.as_ref().and_then(|l| l.preferred_stock_location_id))
            ),
        };
        let saved = if id.is_some() {
            let mut model = model;
            model.version = sea_orm::ActiveValue::NotSet;
            model.created_at = sea_orm::ActiveValue::NotSet;
            location::Entity::update(model).exec(uow.tx()).await?
        } else {
            location::Entity::insert(model)
                .exec_with_returning(uow.tx())
                .await?
        };
        uow
            .change::<company::Entity>(company_id, Vec::new(), if id.is_some() { "vectis.company.location_updated" } else { "vectis.company.location_added" }, |_| json!({ "companyId": company_id, "locationId": location_id, "name": saved.name, "countryCode": saved.country_code,
                    "isShipping": saved.is_shipping, "isBilling": saved.is_billing }))
            .await?;
        uow.commit().await?;
        Ok(saved)
    }

    /// Checks that a company location exists in the unit of work's tenant.
    pub async fn ensure_location_in(&self, uow: &UnitOfWork, id: Uuid) -> AppResult<()> {
        location::Entity::find_by_id(id)
            .filter(location::Column::TenantId.eq(uow.tenant().0))
            .one(uow.tx())
            .await?
            .map(|_| ())
            .ok_or_else(|| AppError::not_found("CompanyLocation", id))
    }

    pub(super) async fn check_locations(
        &self,
        tx: &DatabaseTransaction,
        view: &CompanyView,
        ids: &[Uuid],
    ) -> AppResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let subtree: Vec<Uuid> = descendants(&view.tree, view.company.id)
            .into_iter()
            .collect();
        let known: HashSet<Uuid> = location::Entity::find()
            .select_only()
            .column(location::Column::Id)
            .filter(location::Column::TenantId.eq(view.company.tenant_id))
            .filter(id_in(
                self.core.db.backend(),
                (location::Entity, location::Column::CompanyId),
                subtree,
            ))
            .into_tuple::<Uuid>()
            .all(tx)
            .await?
            .into_iter()
            .collect();
        match ids.iter().find(|id| !known.contains(id)) {
            Some(missing) => Err(AppError::not_found("CompanyLocation", missing)),
            None => Ok(()),
        }
    }
}
