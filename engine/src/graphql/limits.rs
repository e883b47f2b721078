//! Checks on a document before it executes, beyond async-graphql's depth limit and validation:
//!
//! - a document that does not parse is `GRAPHQL_PARSE_FAILED`;
//! - aliases, field selections (fragments expanded) and directives are counted:
//!   above the limits, `QUERY_TOO_COMPLEX`;
//! - directives are the executable ones (`@skip`, `@include`) on the locations they allow,
//!   at most once per location (variable definitions and operations included): else
//!   `VALIDATION`;
//! - every string, in variables and in the document, is free of NUL characters and at most
//!   `graphql.max_string_bytes` long: else `VALIDATION` (no database is asked to store what it
//!   cannot).
//!
//! The check runs on the request before execution (`App::execute_from`), not as a schema
//! extension: with any extension registered, async-graphql routes every field resolution
//! through the extension chain, which costs more than the resolvers of a 10,000-line cart.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    Directive, FragmentDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, Request, ServerError};
use async_graphql_value::{ConstValue, Value};

/// The alias, field, directive and string limits.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Most aliases.
    pub max_aliases: usize,
    /// Most field selections after fragment expansion.
    pub max_fields: usize,
    /// Most directives in a document.
    pub max_directives: usize,
    /// Longest string (bytes) in variables or the document.
    pub max_string_bytes: usize,
}

#[derive(Default)]
struct Counts {
    aliases: usize,
    fields: usize,
}

/// Where a directive sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Query,
    Mutation,
    Subscription,
    VariableDefinition,
    Field,
    FragmentDefinition,
    FragmentSpread,
    InlineFragment,
}

/// The executable directives of the schema and where they may stand.
fn allowed(name: &str, at: Location) -> bool {
    matches!(name, "skip" | "include")
        && matches!(
            at,
            Location::Field | Location::FragmentSpread | Location::InlineFragment
        )
}

fn count(
    set: &SelectionSet,
    fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
    counts: &mut Counts,
    depth: usize,
    limit: usize,
) {
    if depth > 64 || counts.fields > limit {
        return;
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                counts.fields += 1;
                if field.node.alias.is_some() {
                    counts.aliases += 1;
                }
                count(
                    &field.node.selection_set.node,
                    fragments,
                    counts,
                    depth + 1,
                    limit,
                );
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = fragments.get(&spread.node.fragment_name.node) {
                    count(
                        &fragment.node.selection_set.node,
                        fragments,
                        counts,
                        depth + 1,
                        limit,
                    );
                }
            }
            Selection::InlineFragment(inline) => {
                count(
                    &inline.node.selection_set.node,
                    fragments,
                    counts,
                    depth + 1,
                    limit,
                );
            }
        }
    }
}

fn error(code: &str, message: String) -> ServerError {
    error_at(code, message, None)
}

fn error_at(code: &str, message: String, pos: Option<async_graphql::Pos>) -> ServerError {
    let mut err = ServerError::new(message, pos);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    err.extensions = Some(ext);
    err
}

/// What the document walk found wrong, and how many directives it saw.
struct Walk<'a> {
    limits: &'a QueryLimits,
    directives: usize,
    fault: Option<ServerError>,
}

impl Walk<'_> {
    fn fail(&mut self, code: &str, message: String) {
        self.fail_at(code, message, None);
    }

    fn fail_at(&mut self, code: &str, message: String, pos: Option<async_graphql::Pos>) {
        if self.fault.is_none() {
            self.fault = Some(error_at(code, message, pos));
        }
    }

    fn string(&mut self, s: &str) {
        if s.contains('\0') {
            self.fail(
                "VALIDATION",
                "strings must not contain NUL characters".into(),
            );
        } else if s.len() > self.limits.max_string_bytes {
            self.fail(
                "VALIDATION",
                format!(
                    "strings are at most {} bytes long",
                    self.limits.max_string_bytes
                ),
            );
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.string(s),
            Value::List(items) => items.iter().for_each(|i| self.value(i)),
            Value::Object(fields) => fields.iter().for_each(|(k, i)| {
                self.string(k);
                self.value(i);
            }),
            _ => {}
        }
    }

    fn const_value(&mut self, v: &ConstValue) {
        match v {
            ConstValue::String(s) => self.string(s),
            ConstValue::List(items) => items.iter().for_each(|i| self.const_value(i)),
            ConstValue::Object(fields) => fields.iter().for_each(|(k, i)| {
                self.string(k);
                self.const_value(i);
            }),
            _ => {}
        }
    }

    fn directives(&mut self, directives: &[Positioned<Directive>], at: Location) {
        let mut seen = HashSet::new();
        for d in directives {
            self.directives += 1;
            let name = d.node.name.node.as_str();
            if !allowed(name, at) {
                self.fail_at(
                    "VALIDATION",
                    format!("directive @{name} is not allowed on {at:?}"),
                    Some(d.pos),
                );
            } else if !seen.insert(name) {
                self.fail_at(
                    "VALIDATION",
                    format!("directive @{name} is used twice on one {at:?}"),
                    Some(d.pos),
                );
            }
            for (_, arg) in &d.node.arguments {
                self.value(&arg.node);
            }
        }
    }

    fn selections(&mut self, set: &SelectionSet, depth: usize) {
        if depth > 64 || self.fault.is_some() {
            return;
        }
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    self.directives(&field.node.directives, Location::Field);
                    for (_, arg) in &field.node.arguments {
                        self.value(&arg.node);
                    }
                    self.selections(&field.node.selection_set.node, depth + 1);
                }
                Selection::FragmentSpread(spread) => {
                    self.directives(&spread.node.directives, Location::FragmentSpread);
                }
                Selection::InlineFragment(inline) => {
                    self.directives(&inline.node.directives, Location::InlineFragment);
                    self.selections(&inline.node.selection_set.node, depth + 1);
                }
            }
        }
    }
}

impl QueryLimits {
    /// Parses the request (keeping the parsed document for execution) and checks it.
    pub fn check(&self, request: &mut Request) -> Result<(), ServerError> {
        let mut walk = Walk {
            limits: self,
            directives: 0,
            fault: None,
        };
        for (name, value) in request.variables.iter() {
            walk.string(name);
            walk.const_value(value);
        }
        let document = match request.parsed_query() {
            Ok(document) => document,
            Err(err) => {
                let mut server: ServerError = err;
                let mut ext = async_graphql::ErrorExtensionValues::default();
                ext.set("code", "GRAPHQL_PARSE_FAILED");
                server.extensions = Some(ext);
                return Err(server);
            }
        };
        let mut counts = Counts::default();
        for (_, operation) in document.operations.iter() {
            let op = &operation.node;
            count(
                &op.selection_set.node,
                &document.fragments,
                &mut counts,
                0,
                self.max_fields,
            );
            let at = match op.ty {
                OperationType::Query => Location::Query,
                OperationType::Mutation => Location::Mutation,
                OperationType::Subscription => Location::Subscription,
            };
            walk.directives(&op.directives, at);
            for var in &op.variable_definitions {
                walk.directives(&var.node.directives, Location::VariableDefinition);
                if let Some(default) = &var.node.default_value {
                    walk.const_value(&default.node);
                }
            }
            walk.selections(&op.selection_set.node, 0);
        }
        for fragment in document.fragments.values() {
            walk.directives(&fragment.node.directives, Location::FragmentDefinition);
            walk.selections(&fragment.node.selection_set.node, 0);
        }
        if counts.aliases > self.max_aliases {
            return Err(error(
                "QUERY_TOO_COMPLEX",
                format!(
                    "the document uses {} aliases; at most {} are allowed",
                    counts.aliases, self.max_aliases
                ),
            ));
        }
        if counts.fields > self.max_fields {
            return Err(error(
                "QUERY_TOO_COMPLEX",
                format!("the document selects more than {} fields", self.max_fields),
            ));
        }
        if walk.directives > self.max_directives {
            return Err(error(
                "QUERY_TOO_COMPLEX",
                format!(
                    "the document uses {} directives; at most {} are allowed",
                    walk.directives, self.max_directives
                ),
            ));
        }
        match walk.fault {
            Some(fault) => Err(fault),
            None => Ok(()),
        }
    }
}

/// Gives every error of a response an `extensions.code`: errors raised by async-graphql itself
/// (argument and variable coercion, document validation) have none. The depth limit becomes
/// `QUERY_TOO_COMPLEX`, everything else `VALIDATION` — resolvers' own errors always carry
/// their code.
pub fn ensure_codes(response: &mut async_graphql::Response) {
    for err in &mut response.errors {
        let has_code = err
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if has_code {
            continue;
        }
        let code = if err.message.contains("nested too deep") || err.message.contains("too complex")
        {
            "QUERY_TOO_COMPLEX"
        } else {
            "VALIDATION"
        };
        err.extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
}
