//! The picture of an organisation's e-seal (电子印章印模): a red round seal as SVG.
//!
//! Layout (in a 200 × 200 view box, drawn at the seal's physical diameter):
//! an outer ring; the organisation's name along the upper arc, each glyph rotated so its
//! top points outward; a five-pointed star in the centre; the seal type (e.g. 电子印章,
//! 业务专用章) horizontally under the star; optionally the seal code in small characters
//! along the lower arc, reading left to right.
//!
//! Rendering is a pure function of its inputs (no clock, no randomness), so the same
//! seal always yields byte-identical SVG — useful because the picture is embedded in the
//! signed GB/T 38540 seal structure. All text is XML-escaped; characters that XML 1.0
//! cannot carry (control characters, U+FFFE, U+FFFF) are dropped.
//!
//! The fonts named are the Song/serif faces usual on Chinese seals; the viewer falls back
//! to any serif CJK font. A PNG variant, when needed, is rasterised from this SVG.

use std::fmt::Write as _;

/// Seal red.
pub const SEAL_RED: &str = "#E60012";

/// Default physical diameter: 42 mm, the usual size of an organisation's official seal.
pub const DEFAULT_DIAMETER_MM: u32 = 42;

const VIEW: f64 = 200.0;
const CENTRE: f64 = VIEW / 2.0;
const RING_RADIUS: f64 = 94.0;
const RING_WIDTH: f64 = 5.0;
const NAME_RADIUS: f64 = 73.0;
const CODE_RADIUS: f64 = 83.0;
const STAR_RADIUS: f64 = 26.0;
const STAR_CENTRE_Y: f64 = 95.0;
const FONT_FAMILY: &str = "'STSong','SimSun','Songti SC','Noto Serif CJK SC','Source Han Serif SC',serif";

/// Everything the picture shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealPicture<'a> {
    /// Organisation name, written along the top arc.
    pub name: &'a str,
    /// Seal type, written under the star (电子印章, 业务专用章, 合同专用章 …).
    pub seal_type: &'a str,
    /// Seal code (印章编码), written small along the bottom arc; `None` for none.
    pub code: Option<&'a str>,
    /// Physical diameter in millimetres for the `width`/`height` attributes.
    pub diameter_mm: u32,
}

impl<'a> SealPicture<'a> {
    /// A seal picture with no code at the default diameter.
    pub fn new(name: &'a str, seal_type: &'a str) -> Self {
        SealPicture { name, seal_type, code: None, diameter_mm: DEFAULT_DIAMETER_MM }
    }
}

/// Render the seal of `name` with `seal_type` under the star (no code, 42 mm).
pub fn render(name: &str, seal_type: &str) -> String {
    render_picture(&SealPicture::new(name, seal_type))
}

/// Render a seal with every option.
pub fn render_picture(p: &SealPicture<'_>) -> String {
    let name: Vec<char> = clean(p.name).collect();
    let seal_type: String = clean(p.seal_type).collect();
    let code: Vec<char> = p.code.map(|c| clean(c).collect()).unwrap_or_default();
    let diameter = p.diameter_mm.max(1);

    let mut svg = String::with_capacity(4096);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{diameter}mm" height="{diameter}mm" viewBox="0 0 {VIEW} {VIEW}" role="img" aria-label="{label}">"#,
        label = escape(&format!("{} {}", name.iter().collect::<String>(), seal_type)),
    );
    let _ = write!(svg, "<title>{}</title>", escape(&name.iter().collect::<String>()));
    let _ = write!(
        svg,
        r#"<g fill="{SEAL_RED}" stroke="none" font-family="{FONT_FAMILY}" font-weight="bold" text-anchor="middle" dominant-baseline="central">"#
    );
    let _ = write!(
        svg,
        r#"<circle cx="{CENTRE}" cy="{CENTRE}" r="{RING_RADIUS}" fill="none" stroke="{SEAL_RED}" stroke-width="{RING_WIDTH}"/>"#
    );
    write_star(&mut svg);
    write_name_arc(&mut svg, &name);
    write_seal_type(&mut svg, &seal_type);
    write_code_arc(&mut svg, &code);
    svg.push_str("</g></svg>");
    svg
}

/// Characters XML 1.0 can carry, trimmed of surrounding white space.
fn clean(text: &str) -> impl Iterator<Item = char> + '_ {
    text.trim().chars().filter(|&c| !c.is_control() && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// XML-escape text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

fn write_star(svg: &mut String) {
    // A regular pentagram: ten vertices alternating between the outer radius and the
    // inner radius R·sin(18°)/sin(54°), the first pointing straight up.
    let inner = STAR_RADIUS * 18f64.to_radians().sin() / 54f64.to_radians().sin();
    let points: Vec<String> = (0..10)
        .map(|k| {
            let r = if k % 2 == 0 { STAR_RADIUS } else { inner };
            let a = (-90.0 + 36.0 * f64::from(k)).to_radians();
            format!("{:.2},{:.2}", CENTRE + r * a.cos(), STAR_CENTRE_Y + r * a.sin())
        })
        .collect();
    let _ = write!(svg, r#"<polygon points="{}"/>"#, points.join(" "));
}

/// Glyph angles (degrees clockwise from the top) for `n` characters spread over an arc
/// centred on `centre_deg`, at most `max_span` wide and at most `max_step` apart.
fn arc_angles(n: usize, centre_deg: f64, max_span: f64, max_step: f64) -> (Vec<f64>, f64) {
    if n == 0 {
        return (Vec::new(), max_step);
    }
    if n == 1 {
        return (vec![centre_deg], max_step);
    }
    let gaps = (n - 1) as f64;
    let step = (max_span / gaps).min(max_step);
    let start = centre_deg - step * gaps / 2.0;
    ((0..n).map(|i| start + step * i as f64).collect(), step)
}

fn write_name_arc(svg: &mut String, name: &[char]) {
    // Up to 230° of arc (ending above the seal type), at most 40° between glyphs for short
    // names; the glyph size follows the step.
    let (angles, step) = arc_angles(name.len(), 0.0, 230.0, 40.0);
    let font_size = (step.to_radians() * NAME_RADIUS * 0.85).clamp(9.0, 24.0);
    for (c, angle) in name.iter().zip(angles) {
        let a = angle.to_radians();
        let x = CENTRE + NAME_RADIUS * a.sin();
        let y = CENTRE - NAME_RADIUS * a.cos();
        let _ = write!(
            svg,
            r#"<text x="{x:.2}" y="{y:.2}" font-size="{font_size:.2}" transform="rotate({angle:.2} {x:.2} {y:.2})">{}</text>"#,
            escape(&c.to_string())
        );
    }
}

fn write_seal_type(svg: &mut String, seal_type: &str) {
    if seal_type.is_empty() {
        return;
    }
    let n = seal_type.chars().count() as f64;
    // The line sits below the star and must stay inside the name's inner edge.
    let font_size = (84.0 / n).clamp(8.0, 18.0);
    let y = 148.0;
    let _ = write!(
        svg,
        r#"<text x="{CENTRE}" y="{y:.2}" font-size="{font_size:.2}" textLength="{len:.2}" lengthAdjust="spacingAndGlyphs">{}</text>"#,
        escape(seal_type),
        len = (font_size * n).min(84.0),
    );
}

fn write_code_arc(svg: &mut String, code: &[char]) {
    // Along the bottom, centred on 180°, reading left to right: the glyphs run from the
    // lower left to the lower right with their tops towards the centre.
    let (angles, _) = arc_angles(code.len(), 180.0, 110.0, 7.0);
    for (c, angle) in code.iter().zip(angles.into_iter().rev()) {
        let a = angle.to_radians();
        let x = CENTRE + CODE_RADIUS * a.sin();
        let y = CENTRE - CODE_RADIUS * a.cos();
        let rotation = angle - 180.0;
        let _ = write!(
            svg,
            r#"<text x="{x:.2}" y="{y:.2}" font-size="8.50" font-weight="normal" transform="rotate({rotation:.2} {x:.2} {y:.2})">{}</text>"#,
            escape(&c.to_string())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts drawn as `<text>` elements, in document order.
    fn text_elements(svg: &str) -> Vec<String> {
        svg.split("<text ")
            .skip(1)
            .filter_map(|s| {
                let start = s.find('>')? + 1;
                let end = s.find("</text>")?;
                Some(s[start..end].to_string())
            })
            .collect()
    }

    #[test]
    fn every_name_character_is_a_glyph_on_the_arc() {
        let name = "常州市市场监督管理局";
        let svg = render(name, "电子印章");
        let texts = text_elements(&svg);
        // One element per name character, in order, then the seal type.
        let glyphs: Vec<&str> = texts.iter().take(name.chars().count()).map(String::as_str).collect();
        let expected: Vec<String> = name.chars().map(|c| c.to_string()).collect();
        assert_eq!(glyphs, expected.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(texts.last().map(String::as_str), Some("电子印章"));
        assert_eq!(texts.len(), name.chars().count() + 1);
        // Each glyph is rotated along the arc: left half negative, right half positive.
        assert!(svg.contains("rotate(-"));
        assert_eq!(svg.matches("transform=\"rotate(").count(), name.chars().count());
    }

    #[test]
    fn well_formed_shape() {
        let svg = render("常州市天宁区人民政府", "业务专用章");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</g></svg>"));
        assert!(svg.contains("width=\"42mm\""));
        assert!(svg.contains("<circle"));
        assert_eq!(svg.matches("<polygon points=").count(), 1);
        // Balanced elements.
        assert_eq!(svg.matches("<text ").count(), svg.matches("</text>").count());
        assert_eq!(svg.matches("<g ").count(), svg.matches("</g>").count());
        // Deterministic.
        assert_eq!(svg, render("常州市天宁区人民政府", "业务专用章"));
        // No raw markup characters outside tags: every '<' starts a known tag.
        for piece in svg.split('<').skip(1) {
            assert!(
                ["svg ", "title>", "/title>", "g ", "circle ", "polygon ", "text ", "/text>", "/g>", "/svg>"]
                    .iter()
                    .any(|t| piece.starts_with(t)),
                "unexpected tag start: {piece:.20}"
            );
        }
    }

    #[test]
    fn text_is_escaped() {
        let name = "A&B<公司>\"'";
        let svg = render(name, "<script>");
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        let texts = text_elements(&svg);
        for (glyph, c) in texts.iter().zip(name.chars()) {
            assert_eq!(glyph, &escape(&c.to_string()));
        }
        assert!(texts.contains(&"&amp;".to_string()));
        assert!(texts.contains(&"&quot;".to_string()));
        assert!(texts.contains(&"&apos;".to_string()));
        assert!(svg.contains("aria-label=\"A&amp;B&lt;公司&gt;&quot;&apos; &lt;script&gt;\""));
    }

    #[test]
    fn control_characters_are_dropped() {
        let svg = render("常州\u{0}市\u{1b}", "章\u{7}");
        assert!(!svg.chars().any(|c| c.is_control()));
        let texts = text_elements(&svg);
        assert_eq!(texts, vec!["常", "州", "市", "章"]);
    }

    #[test]
    fn code_runs_along_the_bottom() {
        let svg = render_picture(&SealPicture {
            name: "常州市数据局",
            seal_type: "电子印章",
            code: Some("3204020012345"),
            diameter_mm: 40,
        });
        assert!(svg.contains("width=\"40mm\""));
        let texts = text_elements(&svg);
        let code: String = texts[texts.len() - 13..].concat();
        assert_eq!(code, "3204020012345");
        // Code glyphs sit in the lower half of the seal.
        for el in svg.split("<text ").skip(1).filter(|e| e.contains("font-size=\"8.50\"")) {
            let y: f64 = el.split("y=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
            assert!(y > CENTRE, "code glyph above centre: {el}");
        }
    }

    #[test]
    fn long_and_short_names_fit() {
        let short = render("局", "印");
        assert_eq!(text_elements(&short).len(), 2);
        let long_name = "江苏省常州市武进区行政审批局数据资源管理中心综合服务窗口";
        let long = render(long_name, "电子印章");
        assert_eq!(text_elements(&long).len(), long_name.chars().count() + 1);
        // Font sizes never fall below the readable minimum.
        for el in long.split("font-size=\"").skip(1) {
            let size: f64 = el.split('"').next().unwrap().parse().unwrap();
            assert!(size >= 8.0);
        }
        // Empty inputs still give a seal (ring and star).
        let empty = render("", "");
        assert!(empty.contains("<circle") && empty.contains("<polygon"));
        assert!(text_elements(&empty).is_empty());
    }
}
