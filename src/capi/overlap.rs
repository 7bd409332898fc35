//! The overlap rules of the step entry points, as one sweep over byte ranges. Exports nothing.

use super::boundary::CError;

/// Whether two non-empty byte ranges `[a, a + an)` and `[b, b + bn)` share a byte (both
/// already checked by the pointer rule, so neither wraps).
pub(crate) fn overlap(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < a.1 && b.0 < b.1 && a.0 < b.1 && b.0 < a.1
}

/// Check that no destination range overlaps any other range. `spans` holds the
/// destination ranges `(start, end)` first, then from index `split` the read-only ones,
/// which may overlap each other. Each run is sorted on its own (linear when the tensors
/// already lie in address order, the common case of one arena per buffer kind), then the
/// two runs are swept in merged order: O(n) typically, O(n log n) at worst, no allocation.
pub(crate) fn check_spans(spans: &mut [(usize, usize)], split: usize) -> Result<(), CError> {
    let (dst, src) = spans.split_at_mut(split);
    dst.sort_unstable();
    src.sort_unstable();
    let (mut end_any, mut end_dst) = (0usize, 0usize);
    let (mut i, mut j) = (0, 0);
    while i < dst.len() || j < src.len() {
        let take_dst = j == src.len() || (i < dst.len() && dst[i] <= src[j]);
        let (s, e) = if take_dst { dst[i] } else { src[j] };
        if (take_dst && s < end_any) || (!take_dst && s < end_dst) {
            return Err(CError::Overlap("tensor buffers overlap: destination buffers must be disjoint from each other and from the gradients".into()));
        }
        end_any = end_any.max(e);
        if take_dst {
            end_dst = end_dst.max(e);
            i += 1;
        } else {
            j += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_detect_overlaps() {
        // (destinations..., sources...) with the split between them.
        let mut v = vec![(0, 10), (10, 20), (5, 15)];
        assert!(
            check_spans(&mut v, 1).is_err(),
            "source [5,15) overlaps destination [0,10)"
        );
        let mut v = vec![(0, 10), (20, 30), (10, 20), (12, 15)];
        assert!(
            check_spans(&mut v, 2).is_ok(),
            "sources may overlap each other"
        );
        let mut v = vec![(9, 12), (0, 10)];
        assert!(
            check_spans(&mut v, 2).is_err(),
            "destinations overlap, unsorted"
        );
        let mut v = vec![(100, 110), (0, 10), (50, 60), (105, 106)];
        assert!(
            check_spans(&mut v, 2).is_err(),
            "source inside a later destination"
        );
    }
}
