//! stub
use crate::element::prelude::*;
pub(crate) const FACTORIES: &[&Factory] = &[];
