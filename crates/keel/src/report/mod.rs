//! Rendering a tour: the terminal summary ([`text`]), SVG charts ([`charts`]) and the HTML
//! page ([`html`]).

pub mod charts;
pub mod html;
pub mod text;
