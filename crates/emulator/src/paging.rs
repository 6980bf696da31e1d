//! List paging as the service does it: `maxpagesize`, `top`, `skip`,
//! `countRecords`, and a `nextLink` that works when followed as given.
//!
//! Pages continue from the last key served (a keyset token in the
//! `nextLink`), so a list stays complete and free of repeats even when the
//! collection changes between pages.

use super::error::ApiError;
use serde::Serialize;

/// What a list request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Items still to return in all (`top`).
    pub top: Option<usize>,
    pub skip: usize,
    pub page_size: usize,
    pub count_records: bool,
    /// The last key of the previous page.
    pub after: Option<String>,
}

/// Reads the query string of a list request.
pub fn parse(
    raw: Option<&str>,
    default_page: usize,
    max_page: usize,
) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery {
        top: None,
        skip: 0,
        page_size: default_page,
        count_records: false,
        after: None,
    };
    let number = |name: &str, value: &str| {
        value.parse::<usize>().map_err(|_| {
            ApiError::bad_request(
                "InvalidQueryParameterValue",
                format!("{name}={value} is not a non-negative whole number"),
            )
            .target(name)
        })
    };
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "top" | "$top" => query.top = Some(number("top", &value)?),
            "skip" | "$skip" => query.skip = number("skip", &value)?,
            "maxpagesize" => {
                let size = number("maxpagesize", &value)?;
                if size == 0 {
                    return Err(ApiError::bad_request(
                        "InvalidQueryParameterValue",
                        "maxpagesize must be at least 1",
                    )
                    .target("maxpagesize"));
                }
                query.page_size = size.min(max_page);
            }
            "countRecords" => {
                query.count_records = match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(ApiError::bad_request(
                            "InvalidQueryParameterValue",
                            format!("countRecords={value} is not true or false"),
                        )
                        .target("countRecords"))
                    }
                }
            }
            "continuationToken" => query.after = Some(value.into_owned()),
            "filter" | "$filter" => {
                return Err(ApiError::bad_request(
                    "UnsupportedQueryParameter",
                    "the emulator does not support filter",
                )
                .target("filter"))
            }
            _ => {}
        }
    }
    Ok(query)
}

/// A page of results.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageOut<T> {
    pub value: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// Cuts one page from `items` (already positioned after `query.after`),
/// and builds the `nextLink` from `base` (scheme, host and path) when more
/// remain.
pub fn page<K, V, T>(
    items: impl Iterator<Item = (K, V)>,
    query: &ListQuery,
    base: &str,
    api_version: &str,
    key_text: impl Fn(&K) -> String,
    mut view: impl FnMut(K, V) -> T,
) -> PageOut<T> {
    let skip = if query.after.is_some() { 0 } else { query.skip };
    let limit = query
        .top
        .map_or(query.page_size, |top| top.min(query.page_size));
    let mut items = items.skip(skip).peekable();
    let mut value = Vec::with_capacity(limit.min(1024));
    let mut last_key = None;
    while value.len() < limit {
        let Some((key, item)) = items.next() else {
            break;
        };
        last_key = Some(key_text(&key));
        value.push(view(key, item));
    }
    let remaining_top = query.top.map(|top| top - value.len());
    let more = items.peek().is_some() && remaining_top != Some(0);
    let next_link = match (more, last_key) {
        (true, Some(last)) => {
            let mut link = url::form_urlencoded::Serializer::new(String::new());
            link.append_pair("api-version", api_version);
            link.append_pair("maxpagesize", &query.page_size.to_string());
            if let Some(top) = remaining_top {
                link.append_pair("top", &top.to_string());
            }
            if query.count_records {
                link.append_pair("countRecords", "true");
            }
            link.append_pair("continuationToken", &last);
            Some(format!("{base}?{}", link.finish()))
        }
        _ => None,
    };
    PageOut { value, next_link }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_with_top_skip_and_tokens() {
        let q = parse(Some("maxpagesize=2&top=3&skip=1"), 10, 100).unwrap();
        let items = (1..=10).map(|i| (i, i));
        let p = page(items, &q, "http://h/x", "v", |k| k.to_string(), |_, v| v);
        assert_eq!(p.value, vec![2, 3]);
        let link = p.next_link.unwrap();
        assert!(
            link.starts_with("http://h/x?api-version=v&maxpagesize=2&top=1&continuationToken=3"),
            "{link}"
        );
        let q = parse(Some(link.split_once('?').unwrap().1), 10, 100).unwrap();
        assert_eq!(q.after.as_deref(), Some("3"));
        let items = (4..=10).map(|i| (i, i));
        let p = page(items, &q, "http://h/x", "v", |k| k.to_string(), |_, v| v);
        assert_eq!(p.value, vec![4]);
        assert!(p.next_link.is_none());
    }

    #[test]
    fn bad_values_and_limits() {
        assert!(parse(Some("top=x"), 10, 100).is_err());
        assert!(parse(Some("maxpagesize=0"), 10, 100).is_err());
        assert_eq!(
            parse(Some("maxpagesize=5000"), 10, 100).unwrap().page_size,
            100
        );
        assert!(parse(Some("filter=a"), 10, 100).is_err());
    }
}
