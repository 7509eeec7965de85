//! Delivery readers (being written).
