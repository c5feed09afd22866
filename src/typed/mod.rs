//! Typed pipelines: the same engine, with links the compiler checks.
//!
//! ```
//! use parallax::typed::{collect, filter, from_iter, map};
//!
//! let result = from_iter(1i32..=10)
//!     .then(filter(|x: &i32| x % 2 == 0))
//!     .then(map(|x: i32| x * 10))
//!     .sink(collect::<i32>())
//!     .run()
//!     .unwrap()
//!     .into_inner();
//! assert_eq!(result, [20, 40, 60, 80, 100]);
//! ```
//!
//! A [`Stream<T>`] is the end of a chain that carries `T`s; [`Stream::then`] takes only a
//! [`Stage`] whose input is `T`, so a link between mismatched types does not compile. Each
//! item travels as one buffer: `T` archived with rkyv ([`Payload`]) into a pool slot of shared
//! memory. Each stage validates what it takes once (bytecheck) and reads it in place.
//!
//! The builder writes a description and hands it to the parser: a typed pipeline is the graph
//! the parser builds (`typedsrc`, `typed`, `typedsink` elements, plus any dynamic elements
//! given with [`Stream::through`]), planned and run by the same executor, with the same
//! segments, `exec=` choices, stats and `--dot` rendering. The closures reach their elements
//! as attachments (`Pipeline::attach`).
//!
//! Isolation: an isolated worker is this binary re-executed, so a closure cannot follow it. A
//! stage that may run isolated is a [`NamedStage`] (a map) or a [`NamedFilter`]: a `static`
//! with a name and a plain `fn`. The
//! worker finds it in the table the program registers with [`serve_worker`], called first
//! thing in `main`. Limits: named stages only (no captured state), and the program must call
//! [`serve_worker`] before anything else; a worker that does not know the name fails with an
//! error naming it.

mod payload;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock};

use rkyv::util::AlignedVec;

pub use payload::{misaligned_copies, Payload, PayloadError};

use crate::element::prelude::*;
use crate::exec::events::{Events, Subscription};
use crate::exec::{Pipeline, Report, RunControl, RunError, RunOptions};
use crate::registry::Exec;

/// Why a typed pipeline could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum TypedError {
    /// The description the builder wrote was refused (a dynamic part given to `through`).
    #[error("{0}")]
    Description(String),
    /// The run failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// What a stage does with one item (an implementation detail of [`Stage`]).
#[doc(hidden)]
pub enum Step {
    /// A new item, archived into the stage's scratch.
    Emit,
    /// The item goes on unchanged (the same buffer: no copy).
    Pass,
    /// The item is dropped.
    Drop,
    /// The item goes on, then the stream ends (`take`).
    PassThenEnd,
    /// The stream ends before this item.
    End,
}

/// A stage's step function (an implementation detail of [`Stage`]): it reads an item's bytes
/// and archives a new item, if it makes one, into the scratch it is handed.
#[doc(hidden)]
pub type StepFn = Box<dyn FnMut(&[u8], &mut AlignedVec) -> Result<Step, PayloadError> + Send>;

/// Archives `out` into `scratch`; a map to its own type that changed nothing lets the same
/// buffer go on instead (no slot, no copy).
fn emit<I: Payload, O: Payload>(
    out: &O,
    input: &[u8],
    scratch: &mut AlignedVec,
) -> Result<Step, PayloadError> {
    out.encode_into(scratch)?;
    if std::any::TypeId::of::<I>() == std::any::TypeId::of::<O>() && scratch.as_slice() == input {
        return Ok(Step::Pass);
    }
    Ok(Step::Emit)
}

/// A typed operation from `In` to `Out`, ready to become one element.
pub trait Stage {
    /// What it takes.
    type In: Payload;
    /// What it gives.
    type Out: Payload;
    /// Its element's step function.
    #[doc(hidden)]
    fn into_step(self) -> StepFnBox;
}

/// A stage's step, boxed (an implementation detail of [`Stage`]).
#[doc(hidden)]
pub struct StepFnBox(StepFn);

/// Lifts a closure into a stage of its own types.
pub struct Op<I, O, F> {
    make: F,
    _types: std::marker::PhantomData<fn(I) -> O>,
}

impl<I: Payload, O: Payload, F: FnOnce() -> StepFn> Stage for Op<I, O, F> {
    type In = I;
    type Out = O;
    fn into_step(self) -> StepFnBox {
        StepFnBox((self.make)())
    }
}

fn op<I, O>(step: StepFn) -> Op<I, O, impl FnOnce() -> StepFn> {
    Op {
        make: move || step,
        _types: std::marker::PhantomData,
    }
}

/// Transforms each item. A map to the same type whose item comes out unchanged passes the
/// same buffer on (nothing is re-archived into a new slot).
pub fn map<I: Payload, O: Payload>(
    mut f: impl FnMut(I) -> O + Send + 'static,
) -> Op<I, O, impl FnOnce() -> StepFn> {
    op(Box::new(move |bytes, scratch| {
        let out = f(payload::with_aligned::<I, _>(bytes, I::decode)?);
        emit::<I, O>(&out, bytes, scratch)
    }))
}

/// Keeps the items `keep` says yes to (they go on as the same buffer).
pub fn filter<T: Payload>(
    mut keep: impl FnMut(&T) -> bool + Send + 'static,
) -> Op<T, T, impl FnOnce() -> StepFn> {
    op(Box::new(move |bytes, _| {
        let item = payload::with_aligned::<T, _>(bytes, T::decode)?;
        Ok(if keep(&item) { Step::Pass } else { Step::Drop })
    }))
}

/// Transforms and filters in one step.
pub fn filter_map<I: Payload, O: Payload>(
    mut f: impl FnMut(I) -> Option<O> + Send + 'static,
) -> Op<I, O, impl FnOnce() -> StepFn> {
    op(Box::new(move |bytes, scratch| {
        match f(payload::with_aligned::<I, _>(bytes, I::decode)?) {
            Some(out) => emit::<I, O>(&out, bytes, scratch),
            None => Ok(Step::Drop),
        }
    }))
}

/// The first `n` items, then end of stream (items are not read).
pub fn take<T: Payload>(n: u64) -> Op<T, T, impl FnOnce() -> StepFn> {
    let mut seen = 0u64;
    op(Box::new(move |_, _| {
        seen += 1;
        Ok(match seen.cmp(&n) {
            std::cmp::Ordering::Less => Step::Pass,
            std::cmp::Ordering::Equal => Step::PassThenEnd,
            std::cmp::Ordering::Greater => Step::End,
        })
    }))
}

/// Everything after the first `n` items (items are not read).
pub fn skip<T: Payload>(n: u64) -> Op<T, T, impl FnOnce() -> StepFn> {
    let mut seen = 0u64;
    op(Box::new(move |_, _| {
        seen += 1;
        Ok(if seen > n { Step::Pass } else { Step::Drop })
    }))
}

/// Looks at each item, read in place from its archive, and lets it pass unchanged.
pub fn inspect<T: Payload>(
    mut look: impl FnMut(&T::Archived) + Send + 'static,
) -> Op<T, T, impl FnOnce() -> StepFn> {
    op(Box::new(move |bytes, _| {
        payload::with_aligned::<T, _>(bytes, |b| T::view(b).map(&mut look))?;
        Ok(Step::Pass)
    }))
}

// --- named stages (may run isolated) ---------------------------------------------------------

/// A map that may run in an isolated worker: a name and a plain function, known to the worker
/// through [`serve_worker`].
pub struct NamedStage<I, O> {
    /// The name the worker finds it by.
    pub name: &'static str,
    /// What it does to one item.
    pub f: fn(I) -> O,
}

impl<I: Payload, O: Payload> NamedStage<I, O> {
    /// A stage called `name`.
    pub const fn new(name: &'static str, f: fn(I) -> O) -> NamedStage<I, O> {
        NamedStage { name, f }
    }
}

/// A filter that may run in an isolated worker, as [`NamedStage`] does for a map: the items
/// `keep` says yes to go on as the same buffer (in the worker too: nothing is re-archived).
pub struct NamedFilter<T> {
    /// The name the worker finds it by.
    pub name: &'static str,
    /// Whether an item goes on.
    pub keep: fn(&T) -> bool,
}

impl<T: Payload> NamedFilter<T> {
    /// A filter called `name`.
    pub const fn new(name: &'static str, keep: fn(&T) -> bool) -> NamedFilter<T> {
        NamedFilter { name, keep }
    }
}

impl<T: Payload> AnyNamedStage for NamedFilter<T> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn step(&self) -> StepFnBox {
        StepFnBox(filter(self.keep).into_step().0)
    }
}

/// A named stage with its types erased, for the worker's table.
pub trait AnyNamedStage: Sync {
    /// Its name.
    fn name(&self) -> &'static str;
    /// A fresh step function.
    #[doc(hidden)]
    fn step(&self) -> StepFnBox;
}

impl<I: Payload, O: Payload> AnyNamedStage for NamedStage<I, O> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn step(&self) -> StepFnBox {
        StepFnBox(map(self.f).into_step().0)
    }
}

static NAMED: OnceLock<&'static [&'static dyn AnyNamedStage]> = OnceLock::new();

/// Registers the program's named stages and, when this process was started as a worker of an
/// isolated element, serves it and exits. Call it first thing in `main`.
pub fn serve_worker(stages: &'static [&'static dyn AnyNamedStage]) {
    let _ = NAMED.set(stages);
    if std::env::args()
        .nth(1)
        .is_some_and(|a| a == crate::exec::WORKER_ARG)
    {
        let code = crate::exec::worker_main();
        #[allow(clippy::disallowed_methods)] // a worker ends here, like parallax-launch's
        std::process::exit(code);
    }
}

fn named(name: &str) -> Option<&'static dyn AnyNamedStage> {
    NAMED.get()?.iter().copied().find(|s| s.name() == name)
}

// --- the elements ----------------------------------------------------------------------------

/// What a typed element is handed: its step, taken once by `build`.
struct Attached<T>(Mutex<Option<T>>);

impl<T> Attached<T> {
    fn shared(value: T) -> Arc<dyn std::any::Any + Send + Sync>
    where
        T: Send + 'static,
    {
        Arc::new(Attached(Mutex::new(Some(value))))
    }

    fn take(p: &Props) -> Option<T>
    where
        T: Send + 'static,
    {
        p.attached::<Attached<T>>()?
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// Bytes per slot of a typed element's pool; a larger item goes into heap memory.
const SLOT_SIZE: usize = 4096;
/// Slots of a typed element's pool.
const SLOTS: usize = 32;

/// Produces archived items.
pub(crate) static TYPEDSRC: Factory = Factory {
    name: "typedsrc",
    aliases: &[],
    klass: Klass::Source,
    summary: "Items from the program's iterator, archived (typed pipelines)",
    doc: "Made by `typed::from_iter`; written in a description it has nothing to produce.",
    pads: Pads::SOURCE,
    props: &[],
    hints: Hints::FUSABLE,
    build: |p| {
        let items = Attached::<ItemIter>::take(p).ok_or_else(|| {
            ElementError::Config(
                "typedsrc is made by a typed pipeline: it has no items here".into(),
            )
        })?;
        Ok(ElementImpl::Source(Box::new(TypedSrc {
            items,
            scratch: AlignedVec::new(),
        })))
    },
};

/// Archives the next item into the scratch it is handed; `None` at the end.
type ItemIter = Box<dyn FnMut(&mut AlignedVec) -> Option<Result<(), PayloadError>> + Send>;

struct TypedSrc {
    items: ItemIter,
    /// Where each item is archived before it goes into its slot (reused).
    scratch: AlignedVec,
}

/// `bytes` in a slot of `pool` when it fits one, else in heap memory.
fn into_buffer(bytes: &[u8], loan: impl FnOnce() -> Option<LoanedSlot>) -> Buffer {
    if bytes.len() <= SLOT_SIZE {
        if let Some(mut slot) = loan() {
            slot.as_mut_slice()[..bytes.len()].copy_from_slice(bytes);
            return slot.freeze(bytes.len());
        }
    }
    Buffer::from_vec(bytes.to_vec())
}

impl Source for TypedSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        Some(PoolRequest {
            slot_size: SLOT_SIZE,
            slots: SLOTS,
        })
    }

    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        if cx.should_stop() {
            return Ok(None);
        }
        match (self.items)(&mut self.scratch) {
            None => Ok(None),
            Some(Err(e)) => Err(ElementError::Failed(e.to_string())),
            Some(Ok(())) => {
                let bytes = &self.scratch;
                let slot = if bytes.len() <= SLOT_SIZE {
                    match cx.loan() {
                        Ok(slot) => Some(slot),
                        Err(ElementError::Interrupted) => return Ok(None),
                        Err(e) => return Err(e),
                    }
                } else {
                    None
                };
                Ok(Some(into_buffer(bytes, move || slot)))
            }
        }
    }
}

/// One typed operation.
pub(crate) static TYPED: Factory = Factory {
    name: "typed",
    aliases: &[],
    klass: Klass::Filter,
    summary: "One typed operation (map, filter, take...) of a typed pipeline",
    doc: "Made by a typed pipeline's `then`; with `stage=NAME` it runs the named stage the \
          program registered, which is how it runs in an isolated worker.",
    pads: Pads::ONE_TO_ONE,
    props: &[PropSpec::string(
        "stage",
        None,
        "The named stage to run (registered with typed::serve_worker)",
    )],
    hints: Hints::FUSABLE,
    build: |p| {
        let step = match Attached::<StepFn>::take(p) {
            Some(step) => step,
            None => {
                let name = p.string("stage")?.ok_or_else(|| {
                    ElementError::Config("typed needs stage=NAME or a typed pipeline".into())
                })?;
                named(name)
                    .ok_or_else(|| {
                        ElementError::Config(format!(
                            "no typed stage named `{name}` in this program (register it with \
                             typed::serve_worker)"
                        ))
                    })?
                    .step()
                    .0
            }
        };
        Ok(ElementImpl::Transform(Box::new(TypedStage {
            name: p.instance().to_owned(),
            step,
            scratch: AlignedVec::new(),
            pool: None,
        })))
    },
};

struct TypedStage {
    name: String,
    step: StepFn,
    /// Where the step archives the items it makes (reused).
    scratch: AlignedVec,
    /// Where the items it makes are written: shared memory, so they cross to another process
    /// without a copy. Made on first need.
    pool: Option<MemoryPool>,
}

impl Transform for TypedStage {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let step = (self.step)(buf.data(), &mut self.scratch)
            .map_err(|e| ElementError::Failed(e.to_string()))?;
        Ok(match step {
            Step::Pass => Flow::Push(buf),
            Step::Drop => Flow::Drop,
            Step::End => Flow::Eos,
            Step::PassThenEnd => {
                cx.push(buf);
                Flow::Eos
            }
            Step::Emit => {
                let bytes = &self.scratch;
                if self.pool.is_none() {
                    let pool = MemoryPool::new(&PoolConfig::new(&self.name, SLOTS, SLOT_SIZE))
                        .map_err(|e| ElementError::Failed(format!("pool: {e}")))?;
                    self.pool = Some(pool);
                }
                let pool = self.pool.as_ref().expect("made above");
                let stop = || cx.is_stopping();
                let mut out = into_buffer(bytes, || pool.loan_blocking(&stop).ok());
                out.meta = buf.meta.clone();
                Flow::Push(out)
            }
        })
    }
}

/// Consumes archived items.
pub(crate) static TYPEDSINK: Factory = Factory {
    name: "typedsink",
    aliases: &[],
    klass: Klass::Sink,
    summary: "Hands each item to the program (typed pipelines)",
    doc: "Made by a typed pipeline's `sink`; written in a description it discards.",
    pads: Pads::SINK,
    props: &[],
    hints: Hints::FUSABLE,
    build: |p| {
        let each = Attached::<EachFn>::take(p)
            .ok_or_else(|| ElementError::Config("typedsink is made by a typed pipeline".into()))?;
        Ok(ElementImpl::Sink(Box::new(TypedSinkImpl { each })))
    },
};

type EachFn = Box<dyn FnMut(&[u8]) -> Result<(), PayloadError> + Send>;

struct TypedSinkImpl {
    each: EachFn,
}

impl Sink for TypedSinkImpl {
    fn render(&mut self, buf: &Buffer, _cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        (self.each)(buf.data()).map_err(|e| ElementError::Failed(e.to_string()))?;
        Ok(SinkFlow::Continue)
    }
}

/// The typed elements: found by name like any element, not listed by `parallax-inspect`
/// (they mean something only to a program).
pub(crate) const FACTORIES: &[&Factory] = &[&TYPEDSRC, &TYPED, &TYPEDSINK];

// --- the builder -----------------------------------------------------------------------------

#[derive(Default)]
struct Draft {
    /// Finished chains of the description.
    chains: Vec<String>,
    /// What each named element is handed.
    attachments: Vec<(String, Arc<dyn std::any::Any + Send + Sync>)>,
    next: usize,
    /// What its runs publish.
    events: Events,
}

impl Draft {
    fn name(&mut self, kind: &str) -> String {
        let n = format!("{kind}{}", self.next);
        self.next += 1;
        n
    }
}

/// The end of a chain that carries `T`s.
pub struct Stream<T> {
    draft: Rc<RefCell<Draft>>,
    chain: String,
    _type: std::marker::PhantomData<fn() -> T>,
}

/// A typed pipeline whose streams all end in sinks; `R` is what its first sink gives back.
pub struct Sealed<R> {
    draft: Rc<RefCell<Draft>>,
    out: Box<dyn FnOnce() -> R>,
}

/// A finished run: its report and the sink's value.
#[derive(Debug)]
pub struct Ran<R> {
    /// What every element counted (the same report `parallax-launch --stats` prints).
    pub report: Report,
    value: R,
}

impl<R> Ran<R> {
    /// The sink's value.
    pub fn into_inner(self) -> R {
        self.value
    }
}

/// A stream of the items of `items`, each archived into a pool slot.
pub fn from_iter<T: Payload, I>(items: I) -> Stream<T>
where
    I: IntoIterator<Item = T>,
    I::IntoIter: Send + 'static,
{
    let draft = Rc::new(RefCell::new(Draft::default()));
    let name = draft.borrow_mut().name("typedsrc");
    let mut items = items.into_iter();
    let iter: ItemIter = Box::new(move |out| items.next().map(|t| t.encode_into(out)));
    draft
        .borrow_mut()
        .attachments
        .push((name.clone(), Attached::shared(iter)));
    Stream {
        draft,
        chain: format!("typedsrc name={name}"),
        _type: std::marker::PhantomData,
    }
}

impl<T: Payload> Stream<T> {
    fn grow<U>(self, element: &str) -> Stream<U> {
        Stream {
            draft: self.draft,
            chain: format!("{} ! {element}", self.chain),
            _type: std::marker::PhantomData,
        }
    }

    /// Links `stage`, which must take `T`: a mismatched link does not compile.
    ///
    /// A stage that takes `String` cannot follow a stream of `u32`:
    /// ```compile_fail,E0271
    /// use parallax::typed::{from_iter, map};
    /// from_iter(0u32..3).then(map(|s: String| s.len() as u64));
    /// ```
    /// nor can a sink of another type end it:
    /// ```compile_fail,E0271
    /// use parallax::typed::{collect, from_iter};
    /// from_iter(0u32..3).map(|x: u32| x * 2).sink(collect::<String>());
    /// ```
    /// a closure must take what flows:
    /// ```compile_fail,E0631
    /// use parallax::typed::from_iter;
    /// from_iter(0u32..3).filter(|s: &String| s.is_empty());
    /// ```
    /// and a named stage must fit too:
    /// ```compile_fail,E0308
    /// use parallax::typed::{from_iter, NamedStage};
    /// fn twice(x: u64) -> u64 { x * 2 }
    /// static TWICE: NamedStage<u64, u64> = NamedStage::new("twice", twice);
    /// from_iter(["a".to_string()]).then_named(&TWICE);
    /// ```
    /// The same chains with matching types compile:
    /// ```
    /// use parallax::typed::{collect, from_iter, map, NamedStage};
    /// fn twice(x: u64) -> u64 { x * 2 }
    /// static TWICE: NamedStage<u64, u64> = NamedStage::new("twice", twice);
    /// let _ = from_iter(0u32..3)
    ///     .then(map(|x: u32| x.to_string()))
    ///     .filter(|s: &String| !s.is_empty())
    ///     .map(|s: String| s.len() as u64)
    ///     .then_named(&TWICE)
    ///     .sink(collect::<u64>());
    /// ```
    pub fn then<S: Stage<In = T>>(self, stage: S) -> Stream<S::Out> {
        let name = self.draft.borrow_mut().name("typed");
        let step = stage.into_step().0;
        self.draft
            .borrow_mut()
            .attachments
            .push((name.clone(), Attached::shared(step)));
        self.grow(&format!("typed name={name}"))
    }

    /// Links a named stage (one that may run isolated, see [`serve_worker`]).
    pub fn then_named<U: Payload>(self, stage: &'static NamedStage<T, U>) -> Stream<U> {
        let name = self.draft.borrow_mut().name("typed");
        self.grow(&format!("typed name={name} stage={}", stage.name))
    }

    /// Links a named filter (one that may run isolated, see [`serve_worker`]).
    ///
    /// It must filter what flows:
    /// ```compile_fail,E0308
    /// use parallax::typed::{from_iter, NamedFilter};
    /// fn even(x: &u64) -> bool { x % 2 == 0 }
    /// static EVEN: NamedFilter<u64> = NamedFilter::new("even", even);
    /// from_iter(0u32..3).filter_named(&EVEN);
    /// ```
    pub fn filter_named(self, stage: &'static NamedFilter<T>) -> Stream<T> {
        let name = self.draft.borrow_mut().name("typed");
        self.grow(&format!("typed name={name} stage={}", stage.name))
    }

    /// Runs the last element where `exec` says (`exec=isolated` puts a named stage in a
    /// worker process).
    pub fn exec(self, exec: Exec) -> Stream<T> {
        Stream {
            chain: format!("{} exec={}", self.chain, exec.as_str()),
            ..self
        }
    }

    /// Passes the stream through dynamic elements written as a description (`queue`,
    /// `identity`, `valve`...). They must not change the bytes: what comes out is validated as
    /// a `T` by the next typed stage, and a change is an error naming the type.
    pub fn through(self, description: &str) -> Stream<T> {
        self.grow(description)
    }

    /// Transforms each item ([`map`]).
    pub fn map<U: Payload>(self, f: impl FnMut(T) -> U + Send + 'static) -> Stream<U> {
        self.then(map(f))
    }

    /// Keeps the items `keep` says yes to ([`filter`]).
    pub fn filter(self, keep: impl FnMut(&T) -> bool + Send + 'static) -> Stream<T> {
        self.then(filter(keep))
    }

    /// Transforms and filters in one step ([`filter_map`]).
    pub fn filter_map<U: Payload>(
        self,
        f: impl FnMut(T) -> Option<U> + Send + 'static,
    ) -> Stream<U> {
        self.then(filter_map(f))
    }

    /// The first `n` items ([`take`]).
    pub fn take(self, n: u64) -> Stream<T> {
        self.then(take::<T>(n))
    }

    /// All but the first `n` items ([`skip`]).
    pub fn skip(self, n: u64) -> Stream<T> {
        self.then(skip::<T>(n))
    }

    /// Looks at each item in place ([`inspect`]).
    pub fn inspect(self, look: impl FnMut(&T::Archived) + Send + 'static) -> Stream<T> {
        self.then(inspect::<T>(look))
    }

    /// Two streams of the same items (a `tee`: each branch gets the same buffers, not copies).
    pub fn tee(self) -> (Stream<T>, Stream<T>) {
        let name = self.draft.borrow_mut().name("tee");
        let chain = format!("{} ! tee name={name}", self.chain);
        self.draft.borrow_mut().chains.push(chain);
        let branch = || Stream {
            draft: Rc::clone(&self.draft),
            chain: format!("{name}. ! queue"),
            _type: std::marker::PhantomData,
        };
        (branch(), branch())
    }

    /// Ends the stream in `sink`, which must take `T`.
    pub fn sink<K: TypedSink<In = T>>(self, sink: K) -> Sealed<K::Output> {
        let name = self.draft.borrow_mut().name("typedsink");
        let (each, out) = sink.into_parts();
        self.draft
            .borrow_mut()
            .attachments
            .push((name.clone(), Attached::shared(each)));
        let chain = format!("{} ! typedsink name={name}", self.chain);
        self.draft.borrow_mut().chains.push(chain);
        Sealed {
            draft: self.draft,
            out,
        }
    }

    /// Ends the stream in a dynamic description that takes its bytes (`filesink
    /// location=out.bin`, `fakesink`).
    pub fn sink_description(self, description: &str) -> Sealed<()> {
        let chain = format!("{} ! {description}", self.chain);
        self.draft.borrow_mut().chains.push(chain);
        Sealed {
            draft: self.draft,
            out: Box::new(|| ()),
        }
    }
}

impl<R> Sealed<R> {
    /// The description the builder wrote: what the parser makes the graph from.
    pub fn description(&self) -> String {
        self.draft.borrow().chains.join("  ")
    }

    /// The pipeline, parsed, validated and placed like any description, with the closures
    /// attached: run it with the engine's own calls (`run`, `Session`), draw it, plan it.
    pub fn pipeline(&self) -> Result<Pipeline, TypedError> {
        let text = self.description();
        let mut pipeline =
            Pipeline::parse(&text).map_err(|d| TypedError::Description(d.render(&text)))?;
        for (name, value) in self.draft.borrow_mut().attachments.drain(..) {
            pipeline.attach(&name, value)?;
        }
        Ok(pipeline)
    }

    /// Subscribes to the events of the run to come (state changes, element messages,
    /// warnings, QoS, errors, end of stream), as `Session::subscribe` does for a session.
    /// (A session of [`Sealed::pipeline`] has its own.)
    pub fn subscribe(&self) -> Subscription {
        self.draft.borrow().events.subscribe()
    }

    /// Runs to end of stream with the default options.
    pub fn run(self) -> Result<Ran<R>, TypedError> {
        self.run_with(&RunOptions::default())
    }

    /// Runs to end of stream with `options`.
    pub fn run_with(self, options: &RunOptions) -> Result<Ran<R>, TypedError> {
        let pipeline = self.pipeline()?;
        let events = self.draft.borrow().events.clone();
        let control = Arc::new(
            RunControl::new()
                .map_err(|e| RunError::Setup(format!("cannot set up the pipeline: {e}")))?
                .with_events(events),
        );
        let report = pipeline.run(control, options)?;
        Ok(Ran {
            report,
            value: (self.out)(),
        })
    }
}

/// Where a typed stream ends.
pub trait TypedSink {
    /// What it takes.
    type In: Payload;
    /// What the run gives back.
    type Output;
    /// The element's function and the way to the output.
    #[doc(hidden)]
    fn into_parts(self) -> (EachFnBox, Box<dyn FnOnce() -> Self::Output>);
}

/// A sink's per-item function, boxed (an implementation detail of [`TypedSink`]).
#[doc(hidden)]
pub type EachFnBox = Box<dyn FnMut(&[u8]) -> Result<(), PayloadError> + Send>;

/// Collects every item into a `Vec`.
pub struct Collect<T>(std::marker::PhantomData<fn(T)>);

/// Collects every item into a `Vec` (the run's output).
pub fn collect<T: Payload>() -> Collect<T> {
    Collect(std::marker::PhantomData)
}

impl<T: Payload> TypedSink for Collect<T> {
    type In = T;
    type Output = Vec<T>;
    fn into_parts(self) -> (EachFnBox, Box<dyn FnOnce() -> Vec<T>>) {
        let items = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&items);
        let each: EachFnBox = Box::new(move |bytes| {
            let item = payload::with_aligned::<T, _>(bytes, T::decode)?;
            into.lock().unwrap_or_else(|e| e.into_inner()).push(item);
            Ok(())
        });
        let out =
            Box::new(move || std::mem::take(&mut *items.lock().unwrap_or_else(|e| e.into_inner())));
        (each, out)
    }
}

/// Calls a function with each item, read in place.
pub struct ForEach<T, F>(F, std::marker::PhantomData<fn(T)>);

/// Calls `f` with each item's archive, read in place in the buffer it arrived in.
pub fn for_each<T: Payload, F: FnMut(&T::Archived) + Send + 'static>(f: F) -> ForEach<T, F> {
    ForEach(f, std::marker::PhantomData)
}

impl<T: Payload, F: FnMut(&T::Archived) + Send + 'static> TypedSink for ForEach<T, F> {
    type In = T;
    type Output = ();
    fn into_parts(self) -> (EachFnBox, Box<dyn FnOnce()>) {
        let mut f = self.0;
        let each: EachFnBox =
            Box::new(move |bytes| payload::with_aligned::<T, _>(bytes, |b| T::view(b).map(&mut f)));
        (each, Box::new(|| ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_example_runs_on_the_engine() {
        let ran = from_iter(1i32..=10)
            .then(filter(|x: &i32| x % 2 == 0))
            .then(map(|x: i32| x * 10))
            .sink(collect::<i32>())
            .run()
            .unwrap();
        assert_eq!(ran.report.elements.len(), 4);
        assert_eq!(ran.into_inner(), [20, 40, 60, 80, 100]);
    }

    #[test]
    fn take_skip_filter_map_and_a_tee() {
        let (a, b) = from_iter(0u64..100).skip(10).take(5).tee();
        let first = a.filter_map(|x: u64| (x % 2 == 0).then(|| format!("#{x}")));
        let seen = Arc::new(Mutex::new(0u64));
        let counter = Arc::clone(&seen);
        let _second = b
            .inspect(move |_| *counter.lock().unwrap() += 1)
            .sink(collect::<u64>());
        let sealed = first.sink(collect::<String>());
        assert!(sealed.description().contains("tee name="));
        let out = sealed.run().unwrap().into_inner();
        assert_eq!(out, ["#10", "#12", "#14"]);
        assert_eq!(*seen.lock().unwrap(), 5);
    }

    #[test]
    fn a_same_type_map_passes_unchanged_items_and_archives_changed_ones() {
        let mut scratch = AlignedVec::new();
        let mut step = map(|x: u64| x.min(5)).into_step().0;
        let three = 3u64.encode().unwrap();
        assert!(matches!(step(&three, &mut scratch), Ok(Step::Pass)));
        let nine = 9u64.encode().unwrap();
        assert!(matches!(step(&nine, &mut scratch), Ok(Step::Emit)));
        assert_eq!(u64::decode(&scratch).unwrap(), 5);
        // Another type always archives, even when the bytes would agree.
        let mut widen = map(|x: u64| x as i64).into_step().0;
        assert!(matches!(widen(&three, &mut scratch), Ok(Step::Emit)));
        let out = from_iter(0u64..10)
            .map(|x: u64| x.min(5))
            .sink(collect::<u64>())
            .run()
            .unwrap()
            .into_inner();
        assert_eq!(out, [0, 1, 2, 3, 4, 5, 5, 5, 5, 5]);
    }

    #[test]
    fn a_dynamic_part_that_is_not_an_element_is_refused_with_its_name() {
        #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug)]
        struct Pair(u32, u32);
        let err = from_iter([Pair(1, 2)])
            .through("bytechange") // not an element: the description is refused
            .sink(collect::<Pair>())
            .run()
            .unwrap_err();
        assert!(err.to_string().contains("bytechange"), "{err}");
    }
}
