//! The layout: tensor sizes over one flat element space, and their offsets.

use crate::error::{Error, Result};

/// Tensor sizes and their offsets in the flat element space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    sizes: Vec<usize>,
    offsets: Vec<usize>,
}

impl Layout {
    /// A layout over `sizes` (tensors of 0 elements are legal).
    pub fn new(sizes: &[usize]) -> Result<Self> {
        let mut offsets = Vec::with_capacity(sizes.len() + 1);
        let mut acc = 0usize;
        offsets.push(0);
        for &s in sizes {
            acc = acc.checked_add(s).ok_or(Error::LayoutOverflow)?;
            offsets.push(acc);
        }
        Ok(Layout {
            sizes: sizes.to_vec(),
            offsets,
        })
    }

    /// Elements per tensor.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Prefix sums: tensor `i` occupies `offsets()[i]..offsets()[i + 1]`.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// `true` for a layout of no tensors.
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Total elements.
    pub fn total(&self) -> usize {
        self.offsets[self.sizes.len()]
    }

    /// The flat range of tensor `i`.
    pub fn range(&self, i: usize) -> Result<std::ops::Range<usize>> {
        if i >= self.sizes.len() {
            return Err(Error::TensorOutOfRange {
                index: i,
                count: self.sizes.len(),
            });
        }
        Ok(self.offsets[i]..self.offsets[i + 1])
    }
}
