//! The syntax tree of a description. Every node keeps the byte span it came from, so later
//! stages (validation, property parsing) can point at the offending word.

use std::ops::Range;

/// A piece of text with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Byte range in the description.
    pub span: Range<usize>,
}

/// A whole description: chains, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// Chains; items of one chain are linked in order.
    pub chains: Vec<Chain>,
}

/// Items linked by `!`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// At least one item.
    pub items: Vec<Item>,
}

/// One link end in a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `factory key=value ...`
    Element(Element),
    /// `name.` or `name.pad`
    Ref(Reference),
    /// `video/x-raw,width=320`: becomes a capsfilter.
    Caps(Spanned<String>),
    /// `file:///path`: becomes the element that handles the scheme.
    Uri(Spanned<String>),
    /// `( ... )` or `bin.( ... )`.
    Bin(Bin),
}

impl Item {
    /// The span of the whole item.
    pub fn span(&self) -> Range<usize> {
        match self {
            Item::Element(e) => e.span.clone(),
            Item::Ref(r) => r.span.clone(),
            Item::Caps(c) | Item::Uri(c) => c.span.clone(),
            Item::Bin(b) => b.span.clone(),
        }
    }
}

/// An element with its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Factory name as written.
    pub factory: Spanned<String>,
    /// `key=value` pairs, in order.
    pub props: Vec<Property>,
    /// The whole element, properties included.
    pub span: Range<usize>,
}

/// `key=value`, quotes and escapes already removed from the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The key.
    pub key: Spanned<String>,
    /// The unquoted value.
    pub value: Spanned<String>,
}

/// A reference to a named element, optionally to one of its pads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The element's name.
    pub name: Spanned<String>,
    /// The pad, when given.
    pub pad: Option<Spanned<String>>,
    /// The whole reference.
    pub span: Range<usize>,
}

/// A bin: a group of chains that links as one item (first element in, last element out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bin {
    /// `bin` in `bin.( ... )`; `None` for a bare `( ... )`.
    pub factory: Option<Spanned<String>>,
    /// Properties given at the start of the bin (`( name=b ... )`).
    pub props: Vec<Property>,
    /// The chains inside.
    pub chains: Vec<Chain>,
    /// From the opening to the closing parenthesis.
    pub span: Range<usize>,
}
