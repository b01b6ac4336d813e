//! Event time: pure bookkeeping, no I/O, no clocks (callers pass the time).

mod generator;
mod input_watermarks;
mod producer_marks;

pub use generator::{BoundedOutOfOrderness, WatermarkUpdate};
pub use input_watermarks::InputWatermarks;
pub use producer_marks::{Mark, MarkedWatermarks, ProducerMarks};
