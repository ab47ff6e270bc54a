//! Kratos' node ordering (`ui/node/node.go` `Nodes.SortBySchema`).
//!
//! Kratos' comparator is not a total order (nodes of unrelated groups compare as equal, so the
//! relation is not transitive), which makes the result depend on the sort algorithm itself.
//! To reproduce Kratos' output this module runs the same stable algorithm Go's
//! `sort.SliceStable` uses: insertion sort on blocks of 20, then SymMerge.

use sallyport_core::ui::{Attributes, Group, Node};

use crate::gofmt::value_v;

/// The options Kratos passes to `SortBySchema`; the flow crates pick them per flow.
#[derive(Debug, Clone, Default)]
pub struct SortOptions {
    /// `SortByGroups`: nodes are first ordered by the index of their group here (groups not
    /// listed come first).
    pub order_by_groups: Vec<Group>,
    /// `SortUseOrder`: name prefixes ranked before the schema's keys.
    pub use_order: Vec<String>,
    /// `SortBySchema`: the schema's keys (`IdentitySchema::keys_in_order`).
    pub schema_keys: Vec<String>,
    /// `SortUpdateOrder`: rewrites the combined key list (e.g. [`password_login_order`]).
    pub update_order: Option<fn(Vec<String>) -> Vec<String>>,
    /// `SortUseOrderAppend`: prefixes ranked after everything else.
    pub append_order: Vec<String>,
    /// `SortStableGroups`: groups whose incoming order is kept on ties.
    pub stable_groups: Vec<Group>,
}

/// Kratos `node.PasswordLoginOrder`: CSRF token, the first key, then the password.
pub fn password_login_order(keys: Vec<String>) -> Vec<String> {
    let mut out = vec!["csrf_token".to_string()];
    let mut rest = keys.into_iter();
    if let Some(first) = rest.next() {
        out.push(first);
    }
    out.push("password".to_string());
    out.extend(rest);
    out
}

/// Go's `fmt.Sprintf("%v", node.GetValue())`, the tiebreak between equally ranked nodes.
fn value_string(node: &Node) -> String {
    match &node.attributes {
        Attributes::Input(a) => a.value.as_ref().map_or_else(|| "<nil>".into(), value_v),
        Attributes::Other {
            node_type,
            attributes,
        } => {
            let field = match node_type.as_str() {
                "img" | "script" => "src",
                "a" => "href",
                "text" => {
                    // A *text.Message prints as "&{id text type context}".
                    return attributes.get("text").map_or_else(
                        || "<nil>".into(),
                        |t| {
                            format!(
                                "&{{{} {} {} []}}",
                                t.get("id").map(value_v).unwrap_or_default(),
                                t.get("text").and_then(|x| x.as_str()).unwrap_or_default(),
                                t.get("type").and_then(|x| x.as_str()).unwrap_or_default()
                            )
                        },
                    );
                }
                _ => return "<nil>".into(),
            };
            attributes.get(field).map_or_else(|| "<nil>".into(), value_v)
        }
    }
}

/// Sorts `nodes` exactly as Kratos' `Nodes.SortBySchema(opts)` does.
pub fn sort_nodes(nodes: &mut [Node], opts: &SortOptions) {
    let mut keys: Vec<String> = opts.use_order.clone();
    keys.extend(opts.schema_keys.iter().cloned());
    if let Some(update) = opts.update_order {
        keys = update(keys);
    }
    keys.extend(opts.append_order.iter().cloned());

    let total = nodes.len();
    let position = |node: &Node| -> usize {
        if node.name() == "method" {
            return total + keys.len() + 1;
        }
        keys.iter()
            .position(|k| node.name().starts_with(k.as_str()))
            .unwrap_or(keys.len())
    };

    if !opts.order_by_groups.is_empty() {
        let group_index = |g: Group| -> i64 {
            opts.order_by_groups
                .iter()
                .position(|x| *x == g)
                .map_or(-1, |i| i as i64)
        };
        go_stable_sort(nodes, |a, b| group_index(a.group) < group_index(b.group));
    }

    go_stable_sort(nodes, |a, b| {
        let related = a.group == b.group
            || matches!(
                (a.group, b.group),
                (Group::Default, Group::Password) | (Group::Password, Group::Default)
            );
        if !related {
            return false;
        }
        let (pa, pb) = (position(a), position(b));
        if pa != pb {
            return pa < pb;
        }
        if a.group == b.group && opts.stable_groups.contains(&a.group) {
            return false;
        }
        value_string(a) < value_string(b)
    });
}

/// Go's `sort.SliceStable` (insertion-sorted blocks of 20 merged with SymMerge), so that a
/// comparator that is not a strict weak order yields the same permutation as in Kratos.
pub fn go_stable_sort<T>(data: &mut [T], mut less: impl FnMut(&T, &T) -> bool) {
    let n = data.len();
    let mut block = 20;
    let (mut a, mut b) = (0, block);
    while b <= n {
        insertion_sort(data, a, b, &mut less);
        a = b;
        b += block;
    }
    insertion_sort(data, a, n, &mut less);
    while block < n {
        a = 0;
        b = 2 * block;
        while b <= n {
            sym_merge(data, a, a + block, b, &mut less);
            a = b;
            b += 2 * block;
        }
        let m = a + block;
        if m < n {
            sym_merge(data, a, m, n, &mut less);
        }
        block *= 2;
    }
}

fn insertion_sort<T>(data: &mut [T], a: usize, b: usize, less: &mut impl FnMut(&T, &T) -> bool) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(&data[j], &data[j - 1]) {
            data.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// Merges the sorted runs `data[a..m]` and `data[m..b]` (Kim & Kutzner's SymMerge).
fn sym_merge<T>(data: &mut [T], a: usize, m: usize, b: usize, less: &mut impl FnMut(&T, &T) -> bool) {
    if m - a == 1 {
        // Binary search for the first i in [m, b) with data[i] >= data[a], then rotate data[a]
        // into place.
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(&data[h], &data[a]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        for k in a..i - 1 {
            data.swap(k, k + 1);
        }
        return;
    }
    if b - m == 1 {
        // Binary search for the first i in [a, m) with data[i] > data[m].
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(&data[m], &data[h]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = m;
        while k > i {
            data.swap(k, k - 1);
            k -= 1;
        }
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(&data[p - c], &data[c]) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        rotate(data, start, m, end);
    }
    if a < start && start < mid {
        sym_merge(data, a, start, mid, less);
    }
    if mid < end && end < b {
        sym_merge(data, mid, end, b, less);
    }
}

/// Rotates `data[a..b]` so that `data[m]` comes first, by block swaps (as Go does, so the
/// element moves match).
fn rotate<T>(data: &mut [T], a: usize, m: usize, b: usize) {
    let mut i = m - a;
    let mut j = b - m;
    while i != j {
        if i > j {
            swap_range(data, m - i, m, j);
            i -= j;
        } else {
            swap_range(data, m - i, m + j - i, i);
            j -= i;
        }
    }
    swap_range(data, m - i, m, i);
}

fn swap_range<T>(data: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        data.swap(a + i, b + i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_sort_is_a_correct_stable_sort() {
        // Long enough to exercise several merge rounds.
        let mut v: Vec<(u32, usize)> = (0..157).map(|i| ((i * 7919 % 13) as u32, i)).collect();
        go_stable_sort(&mut v, |a, b| a.0 < b.0);
        for w in v.windows(2) {
            assert!(w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1));
        }
    }

    #[test]
    fn login_order() {
        assert_eq!(password_login_order(vec![]), ["csrf_token", "password"]);
        assert_eq!(
            password_login_order(vec!["a".into(), "b".into()]),
            ["csrf_token", "a", "password", "b"]
        );
    }
}
