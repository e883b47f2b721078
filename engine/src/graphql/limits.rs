//! Document limits beyond async-graphql's depth limit: aliases and total field selections
//! (fragments expanded), checked right after parsing so oversized documents never execute.
//!
//! The check runs on the request before execution (`App::execute_from`), not as a schema
//! extension: with any extension registered, async-graphql routes every field resolution
//! through the extension chain, which costs more than the resolvers of a 10,000-line cart.

use std::collections::HashMap;

use async_graphql::parser::types::{FragmentDefinition, Selection, SelectionSet};
use async_graphql::{Name, Positioned, Request, ServerError};

/// The alias and field limits.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Most aliases.
    pub max_aliases: usize,
    /// Most field selections after fragment expansion.
    pub max_fields: usize,
}

#[derive(Default)]
struct Counts {
    aliases: usize,
    fields: usize,
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

fn limit_error(message: String) -> ServerError {
    let mut err = ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", "QUERY_TOO_COMPLEX");
    err.extensions = Some(ext);
    err
}

impl QueryLimits {
    /// Parses the request (keeping the parsed document for execution) and checks the limits.
    /// A document that does not parse passes: execution reports the syntax error.
    pub fn check(&self, request: &mut Request) -> Result<(), ServerError> {
        let Ok(document) = request.parsed_query() else {
            return Ok(());
        };
        let mut counts = Counts::default();
        for (_, operation) in document.operations.iter() {
            count(
                &operation.node.selection_set.node,
                &document.fragments,
                &mut counts,
                0,
                self.max_fields,
            );
        }
        if counts.aliases > self.max_aliases {
            return Err(limit_error(format!(
                "the document uses {} aliases; at most {} are allowed",
                counts.aliases, self.max_aliases
            )));
        }
        if counts.fields > self.max_fields {
            return Err(limit_error(format!(
                "the document selects more than {} fields",
                self.max_fields
            )));
        }
        Ok(())
    }
}
