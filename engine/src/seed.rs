//! Demo data: a tenant, its admin, and an industrial-supplies catalog of a few thousand
//! variants with option groups, collections and EUR/USD prices.
//!
//! Seeding is idempotent: what exists (matched by slug, email and SKU) is left alone, what is
//! missing is created, so a restart neither duplicates nor rewrites data.

use std::collections::HashMap;

use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;
use vectis_strategies::CurrencyCode;

use crate::accounts::PostalAddress;
use crate::accounts::service::NewCustomer;
use crate::auth::{Caller, Permission, Principal, StaffRole};
use crate::catalog::service::{NewCollection, NewOptionGroup, NewProduct, VariantUpsert};
use crate::companies::service::{CompanySettings, LocationInput, NewCompany, PaymentTerms};
use crate::pricing::service::{NewPriceList, SkuTiers};
use crate::services::Services;
use crate::tenancy::Tenant;
use vectis_strategies::pricing::PriceListScope;

/// Slug of the demo tenant.
pub const DEMO_TENANT: &str = "demo";
/// Storefront key of the demo tenant.
pub const DEMO_STOREFRONT_KEY: &str = "demo-storefront-key";
/// Email of the demo administrator.
pub const DEMO_ADMIN_EMAIL: &str = "admin@vectis.demo";
/// Password of the demo administrator (and of every demo login).
pub const DEMO_PASSWORD: &str = "vectis-demo";
/// The demo sales rep (staff), assigned to Acme Construction.
pub const DEMO_SALES_REP_EMAIL: &str = "rep@vectis.demo";
/// Demo company users of Acme Construction: (email, role).
pub const DEMO_COMPANY_USERS: &[(&str, &str, &str, &str)] = &[
    ("admin@acme.demo", "admin", "Alex", "Admin"),
    ("buyer@acme.demo", "buyer", "Bea", "Buyer"),
    ("approver@acme.demo", "approver", "April", "Approver"),
    ("viewer@acme.demo", "viewer", "Vic", "Viewer"),
];

/// What seeding did.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    /// The demo tenant.
    pub tenant: Option<Tenant>,
    /// Products created now.
    pub products_created: usize,
    /// Variants created now.
    pub variants_created: usize,
    /// Variants in the demo catalog.
    pub variants_total: usize,
}

/// `(code, name)` of each option of a group.
type Options = Vec<(String, String)>;
/// Price in EUR cents for a combination of option indexes.
type PriceFn = Box<dyn Fn(&[usize]) -> i64>;

struct Family {
    collection: &'static str,
    name: String,
    sku_prefix: String,
    description: String,
    groups: Vec<(&'static str, &'static str, Options)>,
    price: PriceFn,
}

const COLLECTIONS: &[(&str, &str, Option<&str>)] = &[
    ("fasteners", "Fasteners", None),
    ("bolts", "Bolts & Threaded Rod", Some("fasteners")),
    ("screws", "Screws", Some("fasteners")),
    ("nuts-washers", "Nuts & Washers", Some("fasteners")),
    ("anchors", "Anchors & Plugs", Some("fasteners")),
    ("tools", "Tools", None),
    ("drill-bits", "Drill Bits", Some("tools")),
    ("power-tools", "Power Tools", Some("tools")),
    ("electrical", "Electrical", None),
    ("cables", "Cables", Some("electrical")),
    ("plumbing", "Plumbing", None),
    ("pipes-fittings", "Pipes & Fittings", Some("plumbing")),
    ("safety", "Safety & PPE", None),
    ("gloves", "Gloves", Some("safety")),
];

fn opts(values: &[&str]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|v| (crate::catalog::service::slugify(v), (*v).to_owned()))
        .collect()
}

fn metric(sizes: &[u32]) -> Vec<(String, String)> {
    sizes
        .iter()
        .map(|s| (format!("m{s}"), format!("M{s}")))
        .collect()
}

fn lengths(mm: &[u32]) -> Vec<(String, String)> {
    mm.iter()
        .map(|l| (format!("{l}mm"), format!("{l} mm")))
        .collect()
}

fn families() -> Vec<Family> {
    let mut out = Vec::new();
    let bolt_lengths = [16, 20, 25, 30, 35, 40, 50, 60, 70, 80];
    for (std, kind, base) in [
        ("DIN 933", "Hex Bolt", 9),
        ("DIN 931", "Hex Bolt Part Thread", 11),
        ("ISO 4762", "Socket Cap Screw", 13),
        ("DIN 603", "Carriage Bolt", 10),
    ] {
        for size in [5_u32, 6, 8, 10, 12, 14, 16, 20] {
            out.push(Family {
                collection: "bolts",
                name: format!("{kind} {std} M{size}"),
                sku_prefix: format!("{}-M{size}", std.replace(' ', "")),
                description: format!(
                    "{kind} to {std}, metric coarse thread M{size}. Box of 100. Sold per box."
                ),
                groups: vec![
                    ("length", "Length", lengths(&bolt_lengths)),
                    (
                        "finish",
                        "Finish",
                        opts(&["Zinc plated", "Stainless A2", "Hot-dip galvanised"]),
                    ),
                ],
                price: Box::new(move |ix: &[usize]| {
                    let len = i64::from(bolt_lengths[ix[0]]);
                    let finish = [100, 240, 160][ix[1]];
                    (i64::from(size) * i64::from(size) * len / 4 + base * 100) * finish / 100
                }),
            });
        }
    }
    let rod_sizes = [6_u32, 8, 10, 12, 14, 16, 20, 24];
    out.push(Family {
        collection: "bolts",
        name: "Threaded Rod DIN 976".into(),
        sku_prefix: "DIN976".into(),
        description: "Fully threaded rod to DIN 976-1, metric coarse thread. Pack of 10.".into(),
        groups: vec![
            ("size", "Size", metric(&rod_sizes)),
            ("length", "Length", opts(&["1 m", "2 m", "3 m"])),
            (
                "finish",
                "Finish",
                opts(&["Zinc plated", "Stainless A2", "Stainless A4"]),
            ),
        ],
        price: Box::new(move |ix: &[usize]| {
            let s = i64::from(rod_sizes[ix[0]]);
            s * s * 12 * (ix[1] as i64 + 1) * [100, 280, 390][ix[2]] / 100
        }),
    });
    let screw_lengths = [16, 20, 25, 30, 35, 40, 45, 50, 60, 70];
    for (kind, prefix, base) in [
        ("Chipboard Screw", "CS", 4),
        ("Drywall Screw", "DS", 3),
        ("Self-Tapping Screw", "ST", 5),
    ] {
        for dia in ["3.0", "3.5", "4.0", "4.5", "5.0", "6.0"] {
            out.push(Family {
                collection: "screws",
                name: format!("{kind} {dia} mm"),
                sku_prefix: format!("{prefix}-{}", dia.replace('.', "")),
                description: format!("{kind}, {dia} mm, Pozidriv, box of 500."),
                groups: vec![
                    ("length", "Length", lengths(&screw_lengths)),
                    ("finish", "Finish", opts(&["Yellow zinc", "Stainless A2"])),
                ],
                price: Box::new(move |ix: &[usize]| {
                    (i64::from(screw_lengths[ix[0]]) * 12 + base * 150) * [100, 260][ix[1]] / 100
                }),
            });
        }
    }
    let nut_sizes = [3_u32, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24];
    for (kind, std, base) in [
        ("Hex Nut", "DIN 934", 3),
        ("Nyloc Nut", "DIN 985", 5),
        ("Flat Washer", "DIN 125", 2),
        ("Spring Washer", "DIN 127", 2),
        ("Flange Nut", "DIN 6923", 6),
        ("Wing Nut", "DIN 315", 9),
    ] {
        out.push(Family {
            collection: "nuts-washers",
            name: format!("{kind} {std}"),
            sku_prefix: std.replace(' ', ""),
            description: format!("{kind} to {std}. Box of 200."),
            groups: vec![
                ("size", "Size", metric(&nut_sizes)),
                (
                    "finish",
                    "Finish",
                    opts(&["Zinc plated", "Stainless A2", "Stainless A4"]),
                ),
            ],
            price: Box::new(move |ix: &[usize]| {
                let s = i64::from(nut_sizes[ix[0]]);
                (s * s * 4 + base * 120) * [100, 250, 340][ix[1]] / 100
            }),
        });
    }
    for (kind, prefix, base) in [
        ("Nylon Wall Plug", "NWP", 3),
        ("Wedge Anchor", "WA", 40),
        ("Chemical Anchor Stud", "CAS", 65),
    ] {
        out.push(Family {
            collection: "anchors",
            name: kind.to_owned(),
            sku_prefix: prefix.to_owned(),
            description: format!("{kind} for concrete and masonry. Box of 50."),
            groups: vec![
                ("diameter", "Diameter", metric(&[6, 8, 10, 12, 16])),
                ("length", "Length", lengths(&[40, 60, 80, 100, 120, 160])),
            ],
            price: Box::new(move |ix: &[usize]| {
                (ix[0] as i64 + 1) * (ix[1] as i64 + 2) * base * 10
            }),
        });
    }
    let bit_sizes: Vec<String> = (2..=26)
        .map(|d| format!("{}.{}", d / 2, if d % 2 == 0 { 0 } else { 5 }))
        .collect();
    for (kind, prefix, base) in [
        ("HSS-G Twist Drill Bit", "HSSG", 2),
        ("HSS-Co Twist Drill Bit", "HSSCO", 5),
        ("SDS-plus Masonry Bit", "SDSM", 6),
        ("Wood Brad Point Bit", "WBP", 3),
    ] {
        let sizes: Vec<(String, String)> = bit_sizes
            .iter()
            .map(|d| (format!("d{}", d.replace('.', "-")), format!("{d} mm")))
            .collect();
        out.push(Family {
            collection: "drill-bits",
            name: kind.to_owned(),
            sku_prefix: prefix.to_owned(),
            description: format!("{kind}, ground, for professional use."),
            groups: vec![
                ("diameter", "Diameter", sizes),
                ("pack", "Pack", opts(&["Single", "Pack of 10"])),
            ],
            price: Box::new(move |ix: &[usize]| (ix[0] as i64 + 4) * base * 35 * [1, 8][ix[1]]),
        });
    }
    for (kind, prefix, base) in [
        ("NYM-J Installation Cable", "NYMJ", 90),
        ("H07RN-F Rubber Cable", "H07RNF", 160),
        ("CAT6a S/FTP Data Cable", "CAT6A", 70),
        ("NYY-J Underground Cable", "NYYJ", 140),
    ] {
        out.push(Family {
            collection: "cables",
            name: kind.to_owned(),
            sku_prefix: prefix.to_owned(),
            description: format!("{kind}, sold per coil or drum."),
            groups: vec![
                (
                    "cores",
                    "Cores x cross-section",
                    opts(&["3x1.5", "3x2.5", "5x1.5", "5x2.5", "5x4", "5x6"]),
                ),
                (
                    "length",
                    "Length",
                    opts(&["25 m coil", "50 m coil", "100 m coil", "500 m drum"]),
                ),
            ],
            price: Box::new(move |ix: &[usize]| {
                (ix[0] as i64 + 2) * base * [25, 50, 100, 500][ix[1]] / 2
            }),
        });
    }
    let pipe_sizes = [12_u32, 15, 18, 22, 28, 35, 42, 54];
    for (kind, prefix, base) in [
        ("Copper Pipe EN 1057", "CP", 300),
        ("Press Fitting Elbow 90°", "PFE", 250),
        ("Press Fitting Tee", "PFT", 320),
        ("Press Fitting Coupling", "PFC", 180),
        ("Press Fitting Reducer", "PFR", 260),
    ] {
        out.push(Family {
            collection: "pipes-fittings",
            name: kind.to_owned(),
            sku_prefix: prefix.to_owned(),
            description: format!("{kind} for drinking water and heating installations."),
            groups: vec![
                (
                    "diameter",
                    "Diameter",
                    pipe_sizes
                        .iter()
                        .map(|d| (format!("d{d}"), format!("{d} mm")))
                        .collect(),
                ),
                (
                    "material",
                    "Material",
                    opts(&["Copper", "Stainless steel", "Carbon steel"]),
                ),
            ],
            price: Box::new(move |ix: &[usize]| {
                i64::from(pipe_sizes[ix[0]]) * base / 10 * [100, 210, 80][ix[1]] / 100
            }),
        });
    }
    for (kind, prefix, base) in [
        ("Nitrile Coated Work Glove", "NCG", 250),
        ("Cut-Resistant Glove Level C", "CRG", 690),
        ("Leather Rigger Glove", "LRG", 420),
        ("Disposable Nitrile Glove", "DNG", 900),
    ] {
        out.push(Family {
            collection: "gloves",
            name: kind.to_owned(),
            sku_prefix: prefix.to_owned(),
            description: format!("{kind}, EN 388."),
            groups: vec![
                ("size", "Size", opts(&["7", "8", "9", "10", "11"])),
                ("pack", "Pack", opts(&["1 pair", "12 pairs", "120 pairs"])),
            ],
            price: Box::new(move |ix: &[usize]| base * [1, 11, 100][ix[1]] + ix[0] as i64),
        });
    }
    for (kind, prefix, base) in [
        ("Cordless Drill Driver 18V", "CDD18", 12_900),
        ("SDS-plus Rotary Hammer 18V", "SRH18", 21_900),
        ("Impact Driver 18V", "ID18", 14_900),
        ("Circular Saw 18V", "CS18", 19_900),
        ("Angle Grinder 18V", "AG18", 13_900),
        ("Reciprocating Saw 18V", "RS18", 16_900),
    ] {
        out.push(Family {
            collection: "power-tools",
            name: kind.to_owned(),
            sku_prefix: prefix.to_owned(),
            description: format!("{kind}, brushless, in a systainer case."),
            groups: vec![(
                "kit",
                "Kit",
                opts(&["Bare tool", "2x 4.0 Ah kit", "2x 5.0 Ah kit"]),
            )],
            price: Box::new(move |ix: &[usize]| base + [0, 9_900, 12_900][ix[0]]),
        });
    }
    out
}

fn combinations(sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new()];
    for &n in sizes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                (0..n).map(move |i| {
                    let mut next = prefix.clone();
                    next.push(i);
                    next
                })
            })
            .collect();
    }
    out
}

/// Creates the demo tenant, its admin and catalog where missing.
pub async fn seed_demo(services: &Services, progress: bool) -> anyhow::Result<SeedReport> {
    let mut report = SeedReport::default();
    let tenant = match services.tenants.by_slug(DEMO_TENANT).await? {
        Some(t) => t,
        None => {
            services
                .tenants
                .create(
                    DEMO_TENANT,
                    "Vectis Demo Supply Co.",
                    DEMO_STOREFRONT_KEY,
                    CurrencyCode::EUR,
                )
                .await?
        }
    };
    let admin = match services
        .auth
        .staff_by_email(tenant.id, DEMO_ADMIN_EMAIL)
        .await?
    {
        Some(a) => a,
        None => {
            services
                .auth
                .create_staff(
                    tenant.id,
                    None,
                    DEMO_ADMIN_EMAIL,
                    DEMO_PASSWORD,
                    "Demo Admin",
                    &[StaffRole::Admin],
                )
                .await?
        }
    };
    let caller = Caller {
        tenant: tenant.id,
        principal: Principal::Staff {
            id: admin.id,
            permissions: vec![Permission::SuperAdmin],
        },
    };

    let mut collections: HashMap<String, Uuid> = services
        .catalog
        .collections(tenant.id)
        .await?
        .into_iter()
        .map(|c| (c.slug, c.id))
        .collect();
    for (position, (slug, name, parent)) in COLLECTIONS.iter().enumerate() {
        if collections.contains_key(*slug) {
            continue;
        }
        let created = services
            .catalog
            .create_collection(
                &caller,
                NewCollection {
                    name: (*name).to_owned(),
                    slug: Some((*slug).to_owned()),
                    parent_id: parent.and_then(|p| collections.get(p).copied()),
                    position: i32::try_from(position).unwrap_or(0),
                },
            )
            .await?;
        collections.insert(created.slug, created.id);
    }

    let families = families();
    let slugs: Vec<String> = families
        .iter()
        .map(|f| crate::catalog::service::slugify(&f.name))
        .collect();
    let mut products = services.catalog.products_by_slug(tenant.id, &slugs).await?;
    let mut upserts = Vec::new();
    for (family, slug) in families.iter().zip(&slugs) {
        let product = match products.remove(slug) {
            Some(p) => p,
            None => {
                report.products_created += 1;
                services
                    .catalog
                    .create_product(
                        &caller,
                        NewProduct {
                            name: family.name.clone(),
                            slug: Some(slug.clone()),
                            description: family.description.clone(),
                            collection_ids: collections
                                .get(family.collection)
                                .copied()
                                .into_iter()
                                .collect(),
                            option_groups: family
                                .groups
                                .iter()
                                .map(|(code, name, options)| NewOptionGroup {
                                    code: (*code).to_owned(),
                                    name: (*name).to_owned(),
                                    options: options.clone(),
                                })
                                .collect(),
                        },
                    )
                    .await?
            }
        };
        let sizes: Vec<usize> = family.groups.iter().map(|g| g.2.len()).collect();
        for combo in combinations(&sizes) {
            let codes: Vec<&str> = combo
                .iter()
                .zip(&family.groups)
                .map(|(i, g)| g.2[*i].0.as_str())
                .collect();
            let names: Vec<&str> = combo
                .iter()
                .zip(&family.groups)
                .map(|(i, g)| g.2[*i].1.as_str())
                .collect();
            let eur = (family.price)(&combo).max(1);
            upserts.push(VariantUpsert {
                product_id: product.id,
                sku: format!("{}-{}", family.sku_prefix, codes.join("-")).to_uppercase(),
                name: format!("{} {}", family.name, names.join(" / ")),
                archived: false,
                prices: vec![("EUR".into(), eur), ("USD".into(), eur * 108 / 100)],
                options: combo
                    .iter()
                    .zip(&family.groups)
                    .map(|(i, g)| (g.0.to_owned(), g.2[*i].0.clone()))
                    .collect(),
                tax_category: "standard".into(),
                weight_grams: 250,
            });
        }
    }
    report.variants_total = upserts.len();
    let contract_skus: Vec<(String, i64)> = upserts
        .iter()
        .filter(|u| u.sku.starts_with("DIN933-M8-") || u.sku.starts_with("DIN933-M10-"))
        .map(|u| (u.sku.clone(), u.prices[0].1))
        .collect();
    let wholesale_skus: Vec<(String, i64)> = upserts
        .iter()
        .filter(|u| u.sku.starts_with("DIN934-"))
        .map(|u| (u.sku.clone(), u.prices[0].1))
        .collect();
    let skus: Vec<String> = upserts.iter().map(|u| u.sku.clone()).collect();
    let existing = services
        .catalog
        .variants_by_sku(tenant.id, &skus, true)
        .await?;
    let missing: Vec<VariantUpsert> = upserts
        .into_iter()
        .zip(existing)
        .filter_map(|(u, found)| found.is_none().then_some(u))
        .collect();

    let bar = if progress && !missing.is_empty() {
        let bar = ProgressBar::new(missing.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("seeding demo catalog {bar:40} {pos}/{len} variants")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    for chunk in missing.chunks(500) {
        let outcome = services
            .catalog
            .upsert_variants(&caller, chunk.to_vec())
            .await?;
        if let Some(err) = outcome.errors.first() {
            anyhow::bail!("demo variant {} rejected: {}", err.index, err.message);
        }
        report.variants_created += outcome.variants.len();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let acme = seed_accounts(services, &caller).await?;
    seed_price_lists(services, &caller, acme, contract_skus, wholesale_skus).await?;
    seed_coupons(services, &caller).await?;
    seed_stock(services, &caller, &skus).await?;
    report.tenant = Some(tenant);
    Ok(report)
}

fn location(
    name: &str,
    street: &str,
    city: &str,
    postal: &str,
    country: &str,
    billing: bool,
) -> LocationInput {
    LocationInput {
        name: name.into(),
        is_shipping: true,
        is_billing: billing,
        address: PostalAddress {
            street_line1: street.into(),
            city: city.into(),
            postal_code: postal.into(),
            country_code: country.into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn find_or_create_company(
    services: &Services,
    caller: &Caller,
    name: &str,
    parent: Option<Uuid>,
    settings: CompanySettings,
) -> anyhow::Result<Uuid> {
    let existing = services
        .companies
        .list(
            caller,
            Some(name.to_owned()),
            crate::db::page::PageRequest {
                first: 100,
                after: None,
            },
        )
        .await?;
    if let Some(found) = existing
        .rows
        .into_iter()
        .find(|c| c.company.name == name && c.company.parent_id == parent)
    {
        return Ok(found.company.id);
    }
    let created = services
        .companies
        .create(
            caller,
            NewCompany {
                name: name.into(),
                parent_id: parent,
                settings,
            },
        )
        .await?;
    Ok(created.company.id)
}

async fn ensure_locations(
    services: &Services,
    caller: &Caller,
    company: Uuid,
    wanted: Vec<LocationInput>,
) -> anyhow::Result<Vec<Uuid>> {
    let existing = services
        .companies
        .locations(caller.tenant, vec![company])
        .await?;
    let mut ids = Vec::new();
    for input in wanted {
        match existing.iter().find(|l| l.name == input.name) {
            Some(l) => ids.push(l.id),
            None => ids.push(
                services
                    .companies
                    .save_location(caller, company, None, input)
                    .await?
                    .id,
            ),
        }
    }
    Ok(ids)
}

async fn ensure_member(
    services: &Services,
    caller: &Caller,
    company: Uuid,
    (email, role, first, last): (&str, &str, &str, &str),
) -> anyhow::Result<()> {
    let customer = match services.accounts.credentials(caller.tenant, email).await? {
        Some((customer, _)) => customer,
        None => {
            services
                .accounts
                .create_customer(
                    caller,
                    NewCustomer {
                        email: email.into(),
                        password: Some(DEMO_PASSWORD.into()),
                        first_name: first.into(),
                        last_name: last.into(),
                        phone: None,
                    },
                )
                .await?
        }
    };
    let memberships = services
        .companies
        .memberships_of(caller.tenant, customer.id)
        .await?;
    if !memberships.iter().any(|m| m.company_id == company) {
        services
            .companies
            .add_member(
                caller,
                company,
                customer.id,
                vec![role.to_owned()],
                Vec::new(),
            )
            .await?;
    }
    Ok(())
}

/// Two customer groups, two companies (Acme Construction with two divisions and three
/// locations), a user per company role and a sales rep.
async fn seed_accounts(services: &Services, caller: &Caller) -> anyhow::Result<Uuid> {
    let groups = services.accounts.groups(caller.tenant).await?;
    let mut group_ids = HashMap::new();
    for (code, name) in [("wholesale", "Wholesale"), ("distributor", "Distributor")] {
        let id = match groups.iter().find(|g| g.code == code) {
            Some(g) => g.id,
            None => services.accounts.create_group(caller, code, name).await?.id,
        };
        group_ids.insert(code, id);
    }

    let acme = find_or_create_company(
        services,
        caller,
        "Acme Construction",
        None,
        CompanySettings {
            vat_id: Some(Some("DE811907980".into())),
            payment_terms: Some(Some(PaymentTerms::Net30)),
            credit_limit: Some(Some(("EUR".into(), 25_000_000))),
            customer_group_id: Some(group_ids.get("wholesale").copied()),
            ..Default::default()
        },
    )
    .await?;
    let north = find_or_create_company(
        services,
        caller,
        "Acme Construction North",
        Some(acme),
        CompanySettings::default(),
    )
    .await?;
    let south = find_or_create_company(
        services,
        caller,
        "Acme Construction South",
        Some(acme),
        CompanySettings {
            payment_terms: Some(Some(PaymentTerms::Net60)),
            ..Default::default()
        },
    )
    .await?;
    ensure_locations(
        services,
        caller,
        acme,
        vec![location(
            "Acme HQ",
            "Friedrichstrasse 100",
            "Berlin",
            "10117",
            "DE",
            true,
        )],
    )
    .await?;
    ensure_locations(
        services,
        caller,
        north,
        vec![location(
            "Hamburg Harbour Site",
            "Am Sandtorkai 1",
            "Hamburg",
            "20457",
            "DE",
            false,
        )],
    )
    .await?;
    ensure_locations(
        services,
        caller,
        south,
        vec![location(
            "Munich Depot",
            "Landsberger Strasse 300",
            "Munich",
            "80687",
            "DE",
            false,
        )],
    )
    .await?;
    for user in DEMO_COMPANY_USERS {
        ensure_member(services, caller, acme, *user).await?;
    }

    let globex = find_or_create_company(
        services,
        caller,
        "Globex Engineering",
        None,
        CompanySettings {
            vat_id: Some(Some("FR40303265045".into())),
            payment_terms: Some(Some(PaymentTerms::Net15)),
            customer_group_id: Some(group_ids.get("distributor").copied()),
            ..Default::default()
        },
    )
    .await?;
    ensure_locations(
        services,
        caller,
        globex,
        vec![location(
            "Globex Lyon",
            "10 Rue de la République",
            "Lyon",
            "69002",
            "FR",
            true,
        )],
    )
    .await?;
    ensure_member(
        services,
        caller,
        globex,
        ("admin@globex.demo", "admin", "Gil", "Globex"),
    )
    .await?;

    let rep = match services
        .auth
        .staff_by_email(caller.tenant, DEMO_SALES_REP_EMAIL)
        .await?
    {
        Some(rep) => rep,
        None => {
            services
                .auth
                .create_staff(
                    caller.tenant,
                    None,
                    DEMO_SALES_REP_EMAIL,
                    DEMO_PASSWORD,
                    "Sam Sales",
                    &[StaffRole::SalesRep],
                )
                .await?
        }
    };
    services
        .companies
        .assign_sales_rep(caller, acme, rep.id, true)
        .await?;
    Ok(acme)
}

/// Percent of a base price, rounded half up.
fn percent(base: i64, pct: i64) -> i64 {
    (base * pct + 50) / 100
}

/// A contract price list for Acme Construction (hex bolts M8 and M10: 5 % off, 10 % from 100,
/// 15 % from 1,000) and a wholesale list (hex nuts: 3 % off, 8 % from 500).
/// Demo coupons: `WELCOME10` (10 % from 100 EUR) and `BULK500` (500 EUR off from 10,000 EUR).
/// Two warehouses and stock for every demo variant (once: when the tenant has no stock
/// locations yet): most variants in stock, every fifth low, every seventh out of stock.
async fn seed_stock(services: &Services, caller: &Caller, skus: &[String]) -> anyhow::Result<()> {
    use crate::inventory::service::{Change, StockRow, kind};
    let inventory = &services.inventory;
    if !inventory.locations(caller.tenant).await?.is_empty() {
        return Ok(());
    }
    inventory
        .create_location(caller, "berlin", "Berlin warehouse", Some("DE"))
        .await?;
    inventory
        .create_location(caller, "poznan", "Poznań warehouse", Some("PL"))
        .await?;
    let mut rows = Vec::with_capacity(skus.len() * 2);
    for (i, sku) in skus.iter().enumerate() {
        let (berlin, poznan) = if i % 7 == 0 {
            (0, 0)
        } else if i % 5 == 0 {
            (6, 0)
        } else {
            (100 + (i as i64 * 37) % 900, (i as i64 * 53) % 400)
        };
        for (location, on_hand) in [("berlin", berlin), ("poznan", poznan)] {
            rows.push(StockRow {
                sku: sku.clone(),
                location: location.into(),
                change: Change::Set(on_hand),
            });
        }
    }
    for chunk in rows.chunks(crate::inventory::service::MAX_STOCK_ROWS) {
        if let Err(errors) = inventory
            .change_stock(
                caller,
                chunk.to_vec(),
                kind::IMPORT,
                Some("demo stock".into()),
            )
            .await?
        {
            anyhow::bail!("demo stock rejected: {}", errors[0].message);
        }
    }
    Ok(())
}

async fn seed_coupons(services: &Services, caller: &Caller) -> anyhow::Result<()> {
    let existing = services.cart.coupons(caller).await?;
    let coupons = [
        (
            "WELCOME10",
            "Welcome: 10 % off from 100 EUR",
            Some(1000),
            None,
            10_000,
        ),
        (
            "BULK500",
            "500 EUR off orders from 10,000 EUR",
            None,
            Some(50_000),
            1_000_000,
        ),
    ];
    for (code, name, percent_bp, amount_off, min_order) in coupons {
        if existing.iter().any(|c| c.code == code) {
            continue;
        }
        services
            .cart
            .create_coupon(
                caller,
                demo_coupon(code, name, percent_bp, amount_off, min_order),
            )
            .await?;
    }
    Ok(())
}

fn demo_coupon(
    code: &str,
    name: &str,
    percent_bp: Option<i32>,
    amount_off: Option<i64>,
    min_order: i64,
) -> crate::cart::service::NewCoupon {
    crate::cart::service::NewCoupon {
        code: code.into(),
        name: name.into(),
        percent_bp,
        amount_off,
        currency: "EUR".into(),
        min_order: Some(min_order),
        valid_from: None,
        valid_until: None,
        active: true,
    }
}

async fn seed_price_lists(
    services: &Services,
    caller: &Caller,
    acme: Uuid,
    contract: Vec<(String, i64)>,
    wholesale: Vec<(String, i64)>,
) -> anyhow::Result<()> {
    let existing = services.pricing.lists(caller).await?;
    let groups = services.accounts.groups(caller.tenant).await?;
    let wholesale_group = groups.iter().find(|g| g.code == "wholesale").map(|g| g.id);
    let lists = [
        (
            "Acme Construction contract",
            10,
            PriceListScope::Company(acme),
            contract,
            vec![(1, 95), (100, 90), (1000, 85)],
        ),
        (
            "Wholesale",
            5,
            wholesale_group.map_or(PriceListScope::Everyone, PriceListScope::CustomerGroup),
            wholesale,
            vec![(1, 97), (500, 92)],
        ),
    ];
    for (name, priority, scope, skus, steps) in lists {
        if existing.iter().any(|l| l.name == name) {
            continue;
        }
        let list = services
            .pricing
            .create(
                caller,
                NewPriceList {
                    name: name.into(),
                    priority,
                    scope,
                    currency: "EUR".into(),
                    valid_from: None,
                    valid_until: None,
                },
            )
            .await?;
        let items: Vec<SkuTiers> = skus
            .into_iter()
            .map(|(sku, base)| SkuTiers {
                sku,
                tiers: steps
                    .iter()
                    .map(|(min, pct)| (*min, percent(base, *pct)))
                    .collect(),
            })
            .collect();
        let errors = services.pricing.set_prices(caller, list.id, items).await?;
        if let Some(err) = errors.first() {
            anyhow::bail!("demo price {} rejected: {}", err.index, err.message);
        }
    }
    Ok(())
}
