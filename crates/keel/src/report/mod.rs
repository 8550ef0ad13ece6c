//! A tour's report: its data ([`model`]) and how it is rendered — the terminal summary
//! ([`text`]), SVG charts ([`charts`]) and the HTML page ([`html`]).

pub mod charts;
pub mod html;
pub mod model;
pub mod text;
