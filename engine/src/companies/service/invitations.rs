//! Invitations: granting at most the inviter's rights, redeemed once, dying with the inviter's rights.

use chrono::{Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use super::*;

impl CompaniesService {
    /// Invites someone by email to a company with roles (and optionally restricted to
    /// locations), granting at most what the caller holds. The token goes only into the
    /// invitation email (the event carries the invitation's id).
    pub async fn invite(
        &self,
        caller: &Caller,
        company_id: Uuid,
        email: &str,
        roles: Vec<String>,
        location_ids: Vec<Uuid>,
    ) -> AppResult<(Invitation, String)> {
        let (mut uow, Access { view, grants }) =
            self.begin_membership_change(caller, company_id).await?;
        let email = normalize_email("email", email)?;
        let granted =
            Self::check_roles(uow.tx(), caller.tenant, view.company.root_id, &roles).await?;
        grants.check(&granted)?;
        self.check_locations(uow.tx(), &view, &location_ids).await?;
        if let Some(existing) = self.accounts.find_by_email_in(&uow, &email).await? {
            let already = member::Entity::find()
                .filter(member::Column::TenantId.eq(caller.tenant.0))
                .filter(member::Column::CompanyId.eq(company_id))
                .filter(member::Column::CustomerId.eq(existing.id))
                .one(uow.tx())
                .await?;
            if already.is_some() {
                return Err(AppError::Conflict {
                    code: code::CONFLICT,
                    message: "this person is a member of the company already".into(),
                });
            }
        }
        let (token, hash) = tenant_token(caller.tenant);
        let now = Utc::now();
        let expires_at = now + Duration::days(INVITATION_TTL_DAYS);
        let id = Uuid::now_v7();
        invitation::Entity::insert(invitation::ActiveModel {
            id: Set(id),
            tenant_id: Set(caller.tenant.0),
            company_id: Set(company_id),
            email: Set(email.clone()),
            roles: Set(serde_json::to_string(&roles).map_err(anyhow::Error::from)?),
            location_ids: Set(serde_json::to_string(&location_ids).map_err(anyhow::Error::from)?),
            token_hash: Set(hash),
            invited_by: Set(caller.actor()),
            inviter_kind: Set(Some(
                match caller.principal {
                    Principal::Customer { .. } => "customer",
                    Principal::ApiKey { .. } => "api_key",
                    _ => "staff",
                }
                .to_owned(),
            )),
            expires_at: Set(expires_at),
            accepted_at: Set(None),
            revoked_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(uow.tx())
        .await?;
        let updated = bump_company(&uow, company_id, Vec::new()).await?;
        let event = DomainEvent::new(
            caller.tenant,
            "company",
            company_id,
            updated.version,
            "vectis.company.user_invited",
            json!({ "companyId": company_id, "companyName": updated.name, "invitationId": id, "email": email,
                    "roles": roles, "expiresAt": expires_at }),
        );
        crate::notifications::keep_token(uow.tx(), caller.tenant, event.id, &token).await?;
        uow.record(event);
        uow.commit().await?;
        Ok((
            Invitation {
                id,
                company_id,
                email,
                roles,
                expires_at,
            },
            token,
        ))
    }

    /// Accepts an invitation: creates the customer if the email has no account (then
    /// `password` and names are required) and makes them a member.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: Option<String>,
        first_name: Option<String>,
        last_name: Option<String>,
    ) -> AppResult<(TenantId, Customer, Uuid)> {
        let invalid =
            || AppError::validation("token", "the invitation is invalid, expired or used");
        let (tenant, hash) = parse_tenant_token(token).ok_or_else(invalid)?;
        let mut uow = self.core.begin(tenant, None).await?;
        let company_of: Option<Uuid> = invitation::Entity::find()
            .select_only()
            .column(invitation::Column::CompanyId)
            .filter(invitation::Column::TenantId.eq(tenant.0))
            .filter(invitation::Column::TokenHash.eq(hash.clone()))
            .into_tuple()
            .one(uow.tx())
            .await?;
        Self::lock_tree(&uow, company_of.ok_or_else(invalid)?).await?;
        // Single use: of concurrent acceptances exactly one redeems the invitation.
        let inv = crate::db::lock::consume::<invitation::Entity, _>(
            uow.tx(),
            tenant,
            "accepted_at",
            sea_orm::Condition::all()
                .add(invitation::Column::TokenHash.eq(hash))
                .add(invitation::Column::RevokedAt.is_null())
                .add(invitation::Column::ExpiresAt.gt(Utc::now())),
        )
        .await?
        .ok_or_else(invalid)?;
        // An invitation carries at most its inviter's rights, as they are now: it dies with
        // the inviter's membership or with the rights it would grant.
        if inv.inviter_kind.as_deref() == Some("customer") {
            let roles: Vec<String> = serde_json::from_str(&inv.roles).unwrap_or_default();
            let inviter = inv.invited_by.unwrap_or_default();
            if !self
                .inviter_may_grant(uow.tx(), tenant, inviter, inv.company_id, &roles)
                .await?
            {
                return Err(invalid());
            }
        }
        let customer = match self.accounts.find_by_email_in(&uow, &inv.email).await? {
            Some(existing) => {
                if let Some(password) = &password
                    && self
                        .accounts
                        .credentials(tenant, &inv.email)
                        .await?
                        .is_some_and(|(_, h)| h.is_none())
                {
                    self.accounts
                        .set_initial_password_in(&mut uow, existing.id, password)
                        .await?;
                }
                existing
            }
            None => {
                let password = password.ok_or_else(|| {
                    AppError::validation("password", "is required for a new account")
                })?;
                self.accounts
                    .create_in(
                        &mut uow,
                        NewCustomer {
                            email: inv.email.clone(),
                            password: Some(password),
                            first_name: first_name.unwrap_or_default(),
                            last_name: last_name.unwrap_or_default(),
                            phone: None,
                        },
                        true,
                    )
                    .await?
            }
        };
        let now = Utc::now();
        let membership_id = Uuid::now_v7();
        member::Entity::insert(member::ActiveModel {
            id: Set(membership_id),
            tenant_id: Set(tenant.0),
            company_id: Set(inv.company_id),
            customer_id: Set(customer.id),
            roles: Set(inv.roles.clone()),
            location_ids: Set(inv.location_ids.clone()),
            spending_limit: Set(None),
            monthly_spending_limit: Set(None),
            spending_currency: Set(None),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(uow.tx())
        .await
        .map_err(crate::db::conflict(
            "uq_company_members_company_customer",
            "company_members.company_id",
            "this person is a member of the company already",
        ))?;
        uow.change::<company::Entity>(inv.company_id, Vec::new(), "vectis.company.user_joined", |_| {
            json!({ "companyId": inv.company_id, "customerId": customer.id, "email": customer.email,
                    "roles": serde_json::from_str::<serde_json::Value>(&inv.roles).unwrap_or_default() })
        })
        .await?;
        uow.commit().await?;
        Ok((tenant, customer, inv.company_id))
    }

    /// Whether company user `inviter` still holds `MANAGE_USERS` and every permission of
    /// `roles` through a membership in `company` or one of its ancestors.
    pub(super) async fn inviter_may_grant(
        &self,
        tx: &DatabaseTransaction,
        tenant: TenantId,
        inviter: Uuid,
        company: Uuid,
        roles: &[String],
    ) -> AppResult<bool> {
        let Some(view) = Self::load_tree(tx, tenant, company).await? else {
            return Ok(false);
        };
        let wanted = match Self::check_roles(tx, tenant, view.company.root_id, roles).await {
            Ok(wanted) => wanted,
            Err(AppError::Validation { .. }) => return Ok(false),
            Err(other) => return Err(other),
        };
        for c in view.ancestry() {
            if let Some(m) = Self::current_membership_in(tx, tenant, inviter, c.id, None).await?
                && m.can(CompanyPermission::ManageUsers)
                && Grants::Only(m.permissions).check(&wanted).is_ok()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
