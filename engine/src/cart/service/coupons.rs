//! Coupons: creating them (staff) and applying them to a cart.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use uuid::Uuid;

use super::*;

/// Normalises a coupon code: trimmed, upper case.
pub fn coupon_code(code: &str) -> AppResult<String> {
    let code = code.trim().to_uppercase();
    if code.is_empty()
        || code.len() > 64
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(AppError::validation(
            "code",
            "must be 1-64 letters, digits, `-` or `_`",
        ));
    }
    Ok(code)
}

/// The strategy's view of a stored coupon.
pub fn to_coupon(c: &coupon::Model) -> Option<Coupon> {
    let currency: CurrencyCode = c.currency.parse().ok()?;
    let discount = match (c.kind.as_str(), c.percentage_bp, c.amount) {
        ("percentage", Some(bp), _) => Discount::Percentage(u32::try_from(bp).ok()?),
        ("fixed", _, Some(amount)) => Discount::Fixed(Money::new(amount, currency)),
        _ => return None,
    };
    Some(Coupon {
        code: c.code.clone(),
        discount,
        min_order: c.min_order.map(|m| Money::new(m, currency)),
        valid_from: c.valid_from.map(|t| t.timestamp()),
        valid_until: c.valid_until.map(|t| t.timestamp()),
        active: c.active,
    })
}

impl CartService {
    /// Creates a coupon (`CATALOG_WRITE`).
    pub async fn create_coupon(
        &self,
        caller: &Caller,
        input: NewCoupon,
    ) -> AppResult<coupon::Model> {
        caller.require(crate::auth::Permission::CatalogWrite)?;
        let code = coupon_code(&input.code)?;
        let name = crate::kernel::text::name("name", &input.name, 200)?;
        let currency: CurrencyCode = input
            .currency
            .parse()
            .map_err(|e: MoneyError| AppError::validation("currency", e.to_string()))?;
        let kind = match (input.percent_bp, input.amount_off) {
            (Some(bp), None) if (1..=10_000).contains(&bp) => "percentage",
            (Some(_), None) => {
                return Err(AppError::validation(
                    "percentBasisPoints",
                    "must be between 1 and 10000",
                ));
            }
            (None, Some(amount)) => {
                crate::catalog::service::validate_amount(amount)
                    .map_err(|m| AppError::validation("amountOff", m))?;
                if amount == 0 {
                    return Err(AppError::validation("amountOff", "must be positive"));
                }
                "fixed"
            }
            _ => {
                return Err(AppError::validation(
                    "percentBasisPoints",
                    "give exactly one of percentBasisPoints and amountOff",
                ));
            }
        };
        if let Some(min) = input.min_order {
            crate::catalog::service::validate_amount(min)
                .map_err(|m| AppError::validation("minOrder", m))?;
        }
        if let (Some(from), Some(until)) = (input.valid_from, input.valid_until)
            && from >= until
        {
            return Err(AppError::validation(
                "validUntil",
                "must be after validFrom",
            ));
        }
        let mut uow = self.core.begin_for(caller).await?;
        let now = Utc::now();
        let created = coupon::Entity::insert(coupon::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(caller.tenant.0),
            code: Set(code.clone()),
            name: Set(name),
            kind: Set(kind.into()),
            percentage_bp: Set(input.percent_bp),
            amount: Set(input.amount_off),
            currency: Set(currency.to_string()),
            min_order: Set(input.min_order),
            valid_from: Set(input.valid_from),
            valid_until: Set(input.valid_until),
            active: Set(input.active),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(uow.tx())
        .await
        .map_err(crate::db::conflict(
            "uq_coupons_tenant_code",
            "coupons.tenant_id, coupons.code",
            format!("coupon `{code}` exists"),
        ))?;
        uow.record(DomainEvent::new(
            caller.tenant,
            "coupon",
            created.id,
            1,
            "vectis.coupon.created",
            json!({ "id": created.id, "code": created.code, "kind": created.kind,
                    "percentBasisPoints": created.percentage_bp, "amountOff": created.amount,
                    "currency": created.currency, "minOrder": created.min_order, "active": created.active }),
        ));
        uow.commit().await?;
        Ok(created)
    }

    /// All coupons of the tenant, by code.
    pub async fn coupons(&self, caller: &Caller) -> AppResult<Vec<coupon::Model>> {
        caller.require(crate::auth::Permission::CatalogRead)?;
        let tenant = caller.tenant;
        self.core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(coupon::Entity::find()
                        .filter(coupon::Column::TenantId.eq(tenant.0))
                        .order_by_asc(coupon::Column::Code)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }
}

impl Work<'_> {
    /// A normalised coupon code, or an item error.
    pub(super) fn coupon_code(&mut self, code: &str) -> Option<String> {
        match coupon_code(code) {
            Ok(code) => Some(code),
            Err(err) => {
                self.error(0, code::VALIDATION, "code", err.message());
                None
            }
        }
    }

    pub(super) async fn apply_coupon(&mut self, code: String) -> AppResult<()> {
        let mut codes: Vec<String> = serde_json::from_str(&self.cart.coupons).unwrap_or_default();
        self.event = json!({ "code": code });
        if codes.contains(&code) {
            return Ok(());
        }
        if codes.len() >= MAX_COUPONS {
            self.error(
                0,
                item_code::COUPON_NOT_APPLICABLE,
                "code",
                format!("a cart takes at most {MAX_COUPONS} coupons"),
            );
            return Ok(());
        }
        let Some(row) = coupon::Entity::find()
            .filter(coupon::Column::TenantId.eq(self.uow.tenant().0))
            .filter(coupon::Column::Code.eq(code.clone()))
            .one(self.uow.tx())
            .await?
        else {
            self.error(
                0,
                code::NOT_FOUND,
                "code",
                format!("coupon {code} does not exist"),
            );
            return Ok(());
        };
        let coupon = to_coupon(&row).ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("coupon {} is malformed", row.code))
        })?;
        let currency = CartService::currency_of(self.cart)?;
        let ctx = PromotionContext {
            currency,
            at: Utc::now().timestamp(),
        };
        let subtotal = Money::new(self.cart.subtotal, currency);
        let currency_ok = row.currency == self.cart.currency;
        let check = if currency_ok {
            self.service
                .strategies
                .promotions
                .check(&ctx, subtotal, &coupon)
        } else {
            Err(CouponRejection::Currency(code.clone()))
        };
        if let Err(rejection) = check {
            self.error(
                0,
                item_code::COUPON_NOT_APPLICABLE,
                "code",
                rejection.to_string(),
            );
            return Ok(());
        }
        codes.push(code);
        self.cart.coupons = json_text(&codes)?;
        Ok(())
    }
}
