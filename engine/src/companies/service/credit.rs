//! Credit exposure: orders on account reserve against the credit limit of the nearest company
//! that has one, with one conditional update, so concurrent orders cannot exceed it together.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::*;

impl CompaniesService {
    /// Adds `amount` to `holder`'s exposure if it stays within its limit; `false` (and nothing
    /// changed) when it would not. One statement: no read-then-write window.
    pub async fn reserve_credit_in<C: ConnectionTrait>(
        tx: &C,
        tenant: TenantId,
        holder: Uuid,
        amount: i64,
    ) -> AppResult<bool> {
        let done = company::Entity::update_many()
            .col_expr(
                company::Column::CreditExposure,
                Expr::col(company::Column::CreditExposure).add(amount),
            )
            .filter(company::Column::TenantId.eq(tenant.0))
            .filter(company::Column::Id.eq(holder))
            .filter(company::Column::CreditLimit.is_not_null())
            .filter(
                Expr::col(company::Column::CreditExposure)
                    .add(amount)
                    .lte(Expr::col(company::Column::CreditLimit)),
            )
            .exec(tx)
            .await?;
        Ok(done.rows_affected == 1)
    }

    /// Gives `amount` of `holder`'s exposure back (an invoice paid, an order cancelled); the
    /// exposure never goes below zero.
    pub async fn release_credit_in<C: ConnectionTrait>(
        tx: &C,
        tenant: TenantId,
        holder: Uuid,
        amount: i64,
    ) -> AppResult<()> {
        company::Entity::update_many()
            .col_expr(
                company::Column::CreditExposure,
                sea_orm::sea_query::CaseStatement::new()
                    .case(
                        Expr::col(company::Column::CreditExposure).gt(amount),
                        Expr::col(company::Column::CreditExposure).sub(amount),
                    )
                    .finally(0_i64)
                    .into(),
            )
            .filter(company::Column::TenantId.eq(tenant.0))
            .filter(company::Column::Id.eq(holder))
            .exec(tx)
            .await?;
        Ok(())
    }
}
