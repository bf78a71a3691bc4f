//! Unit tests for the schedules (property and statistical tests live here too).
