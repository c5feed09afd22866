//! [`Session`]: a pipeline's life in three states, after PipeWire's:
//!
//! | state     | holds                                                           |
//! |-----------|-----------------------------------------------------------------|
//! | Suspended | the validated graph only                                        |
//! | Idle      | elements built: files open, pools mapped, worker processes up;  |
//! |           | after a pause also the threads, each source parked between two  |
//! |           | buffers                                                         |
//! | Running   | the same, with every thread moving buffers                      |
//!
//! `prepare` (Suspended → Idle), `activate` (Idle → Running), `pause` (Running → Idle) and
//! `suspend` (Idle → Suspended, releasing everything; a run that was started is stopped) move
//! between them; any other move is an error that names both states.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::events::{Event, Events, Listening, PipelineState, Subscription};
use super::{Pipeline, Prepared, Report, RunControl, RunError, RunOptions};

/// Where a [`Session`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nothing allocated.
    Suspended,
    /// Allocated, not moving.
    Idle,
    /// Moving buffers.
    Running,
}

enum Held {
    Nothing,
    Prepared(Box<Prepared>),
    Started(JoinHandle<Result<Report, RunError>>),
}

/// A pipeline driven through its states from the library.
pub struct Session {
    pipeline: Arc<Pipeline>,
    options: RunOptions,
    control: Arc<RunControl>,
    held: Held,
    state: State,
    events: Events,
    /// Prints warnings, and every event with `messages` (`-m`), while the session lives.
    _printer: Listening,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .finish()
    }
}

impl Session {
    /// A session in the Suspended state.
    pub fn new(pipeline: Pipeline, options: RunOptions) -> Result<Session, RunError> {
        let events = Events::new();
        let control = RunControl::new()
            .map_err(|e| RunError::Setup(format!("cannot set up the pipeline: {e}")))?
            .with_events(events.clone());
        let printer = events.print_to(options.console.clone(), options.messages);
        Ok(Session {
            pipeline: Arc::new(pipeline),
            options,
            control: Arc::new(control),
            held: Held::Nothing,
            state: State::Suspended,
            events,
            _printer: printer,
        })
    }

    /// Subscribes to the session's events (state changes, end of stream, errors, warnings,
    /// element messages, QoS) for every run from now on.
    pub fn subscribe(&self) -> Subscription {
        self.events.subscribe()
    }

    fn enter(&mut self, to: State) {
        let from = self.state;
        self.state = to;
        self.events.publish(Event::StateChanged {
            from: from.into(),
            to: to.into(),
        });
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The control block of the run (for Ctrl-C style drains, or to stop it).
    pub fn control(&self) -> &Arc<RunControl> {
        &self.control
    }

    fn wrong(&self, action: &str, from: State) -> RunError {
        RunError::Setup(format!(
            "cannot {action} a pipeline that is {:?}: it must be {from:?}",
            self.state
        ))
    }

    /// Suspended → Idle: builds every element and plans the threads.
    pub fn prepare(&mut self) -> Result<(), RunError> {
        if self.state != State::Suspended {
            return Err(self.wrong("prepare", State::Suspended));
        }
        let prepared = self.pipeline.prepare_with(&self.options, &self.events)?;
        self.held = Held::Prepared(Box::new(prepared));
        self.enter(State::Idle);
        Ok(())
    }

    /// Idle → Running: starts the threads the first time, lets parked sources go after a pause.
    pub fn activate(&mut self) -> Result<(), RunError> {
        if self.state != State::Idle {
            return Err(self.wrong("activate", State::Idle));
        }
        // Subscribers hear of the state before anything the threads say.
        self.enter(State::Running);
        match std::mem::replace(&mut self.held, Held::Nothing) {
            Held::Prepared(prepared) => {
                let pipeline = Arc::clone(&self.pipeline);
                let control = Arc::clone(&self.control);
                let options = self.options.clone();
                let driver = std::thread::Builder::new()
                    .name("px-session".into())
                    .spawn(move || pipeline.execute(*prepared, control, &options));
                match driver {
                    Ok(driver) => self.held = Held::Started(driver),
                    Err(e) => {
                        // Nothing was built for good: the session is back where it started.
                        self.enter(State::Suspended);
                        self.fresh_control()?;
                        return Err(RunError::Setup(format!("cannot start a thread: {e}")));
                    }
                }
            }
            started @ Held::Started(_) => {
                self.held = started;
                self.control.resume();
            }
            Held::Nothing => unreachable!("an Idle session holds its elements"),
        }
        Ok(())
    }

    /// Running → Idle: every source holds still before its next buffer; threads, pools and
    /// files stay. Returns once all sources are parked (or finished), at most `timeout`.
    pub fn pause(&mut self, timeout: Duration) -> Result<(), RunError> {
        if self.state != State::Running {
            return Err(self.wrong("pause", State::Running));
        }
        if !self.control.pause(timeout) {
            self.control.resume();
            return Err(RunError::Setup(format!(
                "a source did not reach a pause within {timeout:?} (it may be blocked reading)"
            )));
        }
        self.enter(State::Idle);
        Ok(())
    }

    /// Idle → Suspended: releases everything. A run that was started is stopped; its report
    /// (what went through before) is returned. The session is Suspended afterwards even when
    /// that run ended in an error.
    pub fn suspend(&mut self) -> Result<Option<Report>, RunError> {
        if self.state != State::Idle {
            return Err(self.wrong("suspend", State::Idle));
        }
        let held = std::mem::replace(&mut self.held, Held::Nothing);
        self.enter(State::Suspended);
        let report = match held {
            Held::Started(driver) => {
                // Sources end their streams where they stand; the rest drains and ends.
                self.control.request_drain();
                self.control.resume();
                Some(join(driver))
            }
            Held::Prepared(_) | Held::Nothing => None,
        };
        self.fresh_control()?;
        report.transpose()
    }

    /// Waits for a running session to reach end of stream; the session is then Suspended.
    pub fn wait(&mut self) -> Result<Report, RunError> {
        if self.state != State::Running {
            return Err(self.wrong("wait for", State::Running));
        }
        let Held::Started(driver) = std::mem::replace(&mut self.held, Held::Nothing) else {
            unreachable!("a Running session has started")
        };
        let report = join(driver);
        self.enter(State::Suspended);
        self.fresh_control()?;
        report
    }

    /// A run's control block keeps its drain, stop and error for good: the next run gets a
    /// new one.
    fn fresh_control(&mut self) -> Result<(), RunError> {
        let control = RunControl::new()
            .map_err(|e| RunError::Setup(format!("cannot set up the pipeline: {e}")))?
            .with_events(self.events.clone());
        self.control = Arc::new(control);
        Ok(())
    }
}

impl From<State> for PipelineState {
    fn from(s: State) -> PipelineState {
        match s {
            State::Suspended => PipelineState::Suspended,
            State::Idle => PipelineState::Idle,
            State::Running => PipelineState::Running,
        }
    }
}

fn join(driver: JoinHandle<Result<Report, RunError>>) -> Result<Report, RunError> {
    driver.join().unwrap_or_else(|_| {
        Err(RunError::Setup(
            "the session's driver thread panicked".into(),
        ))
    })
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Held::Started(driver) = std::mem::replace(&mut self.held, Held::Nothing) {
            self.control.request_drain();
            self.control.resume();
            let _ = driver.join();
        }
    }
}
