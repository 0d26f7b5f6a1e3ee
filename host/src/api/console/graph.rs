//! The step graph of a workflow definition, drawn on the server as inline SVG.
//!
//! The console's Workflows page shows how a definition's steps connect. Drawing it here,
//! as a pure function of the parsed [`Definition`], keeps the console free of a
//! JavaScript graph library and of any CDN: the page embeds the markup as it is, it works
//! with scripts disabled and behind an air gap, and a stylesheet may recolour it through
//! the classes (`node call`, `node human`, `edge jump`, ...), while inline presentation
//! attributes make it look right without one.
//!
//! The layout follows the definition rather than a general graph layout: workflows are
//! step lists (see `docs/workflows.md`), so the top-level steps are boxes in one column,
//! in definition order. Falling through to the following step is a straight arrow down;
//! every other move (a `next` to another step, each outcome of a route map, each branch
//! case, `else`, `on_error: {goto}`) is a rounded arrow in the right margin, in a lane of
//! its own where it would overlap another, labelled next to the step it leaves. Moves that
//! end the run successfully (`next: end`, falling off the last step) lead to a final
//! "run succeeds" box. `parallel` and `for_each` are one box listing their nested steps.

use crate::engine::definition::{Definition, NextDef, OnErrorDef, StepDef, WaitDef};
use std::fmt::Write;

/// Left and top margin around the column of boxes.
const MARGIN: i32 = 16;
/// Width of every box.
const BOX_WIDTH: i32 = 300;
/// Height of a box with an id and a kind line; a note line adds [`LINE`].
const BOX_HEIGHT: i32 = 46;
const LINE: i32 = 16;
/// Vertical space between two boxes (where the straight arrows go).
const GAP: i32 = 34;
/// Vertical distance between two margin arrows leaving or entering the same box.
const PORT_GAP: i32 = 16;
/// Distance from the boxes' right side to the first lane, and between lanes.
const LANE_START: i32 = 28;
const LANE_GAP: i32 = 16;
/// Radius of the corners of margin arrows.
const CORNER: i32 = 9;
/// Rough width of one character of an 11px label, to size the drawing.
const LABEL_CHAR: i32 = 7;

/// Longest id, kind line, human title and edge label shown before `…`.
const MAX_ID: usize = 34;
const MAX_KIND: usize = 44;
const MAX_TITLE: usize = 32;
const MAX_LABEL: usize = 28;

/// Default colours of arrows and their labels.
const EDGE_COLOUR: &str = "#555555";
const ERROR_COLOUR: &str = "#c0392b";

/// The name the definition syntax reserves for "end this list".
const END: &str = "end";

/// The step graph of `definition` as an SVG document fragment (`<svg …>…</svg>`), for
/// the console's workflow page.
pub fn draw(definition: &Definition) -> String {
    let mut nodes: Vec<Node> = definition.steps.iter().map(Node::of_step).collect();
    let mut edges = edges(&definition.steps);
    let ends_run = edges.iter().any(|e| e.to == definition.steps.len());
    if ends_run || definition.steps.is_empty() {
        nodes.push(Node::terminal());
    }
    let lanes = assign_lanes(&edges);
    for (edge, lane) in edges.iter_mut().zip(lanes) {
        edge.lane = lane;
    }
    let layout = Layout::new(&nodes, &edges);

    let mut svg = String::new();
    // Writing to a String cannot fail.
    let _ = write_svg(&mut svg, &definition.name, &nodes, &edges, &layout);
    svg
}

/// One box: a step, or the final "run succeeds" box.
struct Node {
    /// The step id (`None` for the final box).
    id: Option<String>,
    /// CSS class after `node` (`call`, `human`, `for-each`, ...).
    class: &'static str,
    /// The second line, as shown (already shortened).
    kind: String,
    /// The full description, for the tooltip.
    detail: String,
    /// `on_error: escalate`: the step goes to a person when it fails.
    escalates: bool,
}

impl Node {
    fn of_step(step: &StepDef) -> Node {
        let (class, kind, detail) = describe(step);
        Node {
            id: Some(step.id.clone()),
            class,
            kind: shorten(&kind, MAX_KIND),
            detail,
            escalates: matches!(&step.on_error, Some(OnErrorDef::Action(a)) if a == "escalate"),
        }
    }

    fn terminal() -> Node {
        Node {
            id: None,
            class: "terminal",
            kind: String::new(),
            detail: "The run succeeds".to_owned(),
            escalates: false,
        }
    }

    /// Height before margin arrows ask for more.
    fn base_height(&self) -> i32 {
        match (&self.id, self.escalates) {
            (None, _) => BOX_HEIGHT - 12,
            (Some(_), false) => BOX_HEIGHT,
            (Some(_), true) => BOX_HEIGHT + LINE,
        }
    }

    /// Default fill and stroke, for when no stylesheet styles the classes.
    fn colours(&self) -> (&'static str, &'static str) {
        match self.class {
            "call" => ("#eef4ff", "#4a6fa5"),
            "rule" => ("#f4effd", "#7a5cc2"),
            "branch" => ("#fff8e6", "#b7891f"),
            "human" => ("#fff0e0", "#d9822b"),
            "wait" => ("#eefaf4", "#3c8d5f"),
            "parallel" | "for-each" => ("#f3f3f3", "#666666"),
            "end" | "terminal" => ("#e8f7ec", "#2e8b57"),
            "fail" => ("#fdecec", "#c0392b"),
            _ => ("#ffffff", "#888888"),
        }
    }
}

/// The CSS class, the kind line (full length) and the tooltip text of a step.
fn describe(step: &StepDef) -> (&'static str, String, String) {
    if let Some(target) = &step.call {
        let line = format!("call {target}");
        return ("call", line.clone(), line);
    }
    if let Some(target) = &step.rule {
        let line = format!("rule {target}");
        return ("rule", line.clone(), line);
    }
    if let Some(cases) = &step.branch {
        let mut detail = String::from("branch");
        for case in cases {
            let _ = write!(detail, "\nif {} → {}", one_line(&case.condition), case.next);
        }
        match &step.otherwise {
            Some(target) => {
                let _ = write!(detail, "\nelse → {target}");
            }
            None => detail.push_str("\nelse → the following step"),
        }
        return ("branch", "branch".to_owned(), detail);
    }
    if let Some(branches) = &step.parallel {
        let lists: Vec<String> = branches.values().map(|steps| ids(steps)).collect();
        let named: Vec<String> = branches
            .iter()
            .map(|(name, steps)| format!("{name}: {}", ids(steps)))
            .collect();
        return (
            "parallel",
            format!("parallel: {}", lists.join(" | ")),
            format!("parallel\n{}", named.join("\n")),
        );
    }
    if let Some(items) = &step.for_each {
        let body = step.steps.as_deref().map(ids).unwrap_or_default();
        let line = format!("for each {}: {body}", one_line(items));
        return ("for-each", line.clone(), line);
    }
    if let Some(wait) = &step.wait {
        let line = wait_line(wait);
        let detail = match &wait.timeout {
            Some(timeout) => format!("{line} (gives up after {timeout})"),
            None => line.clone(),
        };
        return ("wait", line, detail);
    }
    if let Some(human) = &step.human {
        let line = format!("human: {}", shorten(&human.title, MAX_TITLE));
        let mut detail = format!("human: {}", human.title);
        if let Some(description) = &human.description {
            let _ = write!(detail, "\n{description}");
        }
        if !human.assignees.is_empty() {
            let _ = write!(detail, "\nassignees: {}", human.assignees.join(", "));
        }
        return ("human", line, detail);
    }
    if step.end.is_some() {
        return (
            "end",
            "end".to_owned(),
            "end: the list ends here".to_owned(),
        );
    }
    if let Some(fail) = &step.fail {
        let line = format!("fail {}", fail.code);
        let detail = format!("fail: the run fails with code {}", fail.code);
        return ("fail", line, detail);
    }
    (
        "unknown",
        "?".to_owned(),
        "a step of no known kind".to_owned(),
    )
}

fn wait_line(wait: &WaitDef) -> String {
    if let Some(duration) = &wait.duration {
        format!("wait {}", one_line(duration))
    } else if let Some(until) = &wait.until {
        format!("wait until {}", one_line(until))
    } else if let Some(event) = &wait.event {
        format!("wait event {}", one_line(event))
    } else {
        "wait".to_owned()
    }
}

/// The ids of a nested list, comma-separated.
fn ids(steps: &[StepDef]) -> String {
    steps
        .iter()
        .map(|s| s.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An arrow between two boxes (indices into the node list; the final box is
/// `steps.len()`).
struct Edge {
    from: usize,
    to: usize,
    /// Outcome names, `if …`, `else`, `on error`, joined; empty for a plain move on.
    label: String,
    /// Every move it stands for is an `on_error: {goto}`.
    error: bool,
    /// Margin lane (jumps only).
    lane: usize,
}

impl Edge {
    /// A straight arrow down to the following box, rather than a margin arrow.
    fn is_straight(&self) -> bool {
        self.to == self.from + 1
    }

    /// The rows the arrow spans, top first.
    fn span(&self) -> (usize, usize) {
        (self.from.min(self.to), self.from.max(self.to))
    }
}

/// One way out of a step, as written: a label (`None` for a plain move on), the target
/// (a step id or [`END`]) and whether it is taken on error.
struct Exit<'a> {
    label: Option<String>,
    target: &'a str,
    error: bool,
}

/// Where a step can go next (see "Where a step goes" in `docs/workflows.md`).
/// `following` is the next step's id, or [`END`] for the last step.
fn exits<'a>(step: &'a StepDef, following: &'a str) -> Vec<Exit<'a>> {
    if step.end.is_some() || step.fail.is_some() {
        // `end` ends its list and `fail` the run: nothing follows, not even on error.
        return Vec::new();
    }
    let mut exits = Vec::new();
    let mut add = |label: Option<String>, target: &'a str, error: bool| {
        exits.push(Exit {
            label,
            target,
            error,
        })
    };
    if let Some(cases) = &step.branch {
        for case in cases {
            let condition = format!("if {}", one_line(&case.condition));
            add(Some(condition), &case.next, false);
        }
        // No case matching and no `else`: the following step.
        let otherwise = step.otherwise.as_deref().unwrap_or(following);
        add(Some("else".to_owned()), otherwise, false);
    } else {
        match &step.next {
            None => add(None, following, false),
            Some(NextDef::Step(target)) => add(None, target, false),
            Some(NextDef::Routes(routes)) => {
                for (outcome, target) in routes {
                    add(Some(outcome.clone()), target, false);
                }
                // An outcome the map does not name goes to `else`, or fails the step.
                if let Some(otherwise) = &step.otherwise {
                    add(Some("else".to_owned()), otherwise, false);
                }
            }
        }
    }
    if let Some(OnErrorDef::Goto { goto }) = &step.on_error {
        add(Some("on error".to_owned()), goto, true);
    }
    exits
}

/// The arrows between the top-level steps: one per (step, target) pair, with the labels
/// of every way out that leads there. Targets that name no step are left out (a stored
/// definition has been validated; a draft may not be).
fn edges(steps: &[StepDef]) -> Vec<Edge> {
    let index = |target: &str| -> Option<usize> {
        if target == END {
            return Some(steps.len());
        }
        steps.iter().position(|s| s.id == target)
    };
    let mut edges: Vec<Edge> = Vec::new();
    for (from, step) in steps.iter().enumerate() {
        let following = steps.get(from + 1).map_or(END, |s| s.id.as_str());
        let mut mine: Vec<(usize, Vec<Option<String>>, bool)> = Vec::new();
        for exit in exits(step, following) {
            let Some(to) = index(exit.target) else {
                continue;
            };
            match mine.iter_mut().find(|(t, _, _)| *t == to) {
                Some((_, labels, error)) => {
                    labels.push(exit.label);
                    *error &= exit.error;
                }
                None => mine.push((to, vec![exit.label], exit.error)),
            }
        }
        for (to, labels, error) in mine {
            edges.push(Edge {
                from,
                to,
                label: join_labels(&labels),
                error,
                lane: 0,
            });
        }
    }
    edges
}

/// The labels of the ways out that share an arrow; a plain move on among labelled ones
/// shows as `next`.
fn join_labels(labels: &[Option<String>]) -> String {
    if labels.iter().all(Option::is_none) {
        return String::new();
    }
    let parts: Vec<&str> = labels
        .iter()
        .map(|l| l.as_deref().unwrap_or("next"))
        .collect();
    shorten(&parts.join(", "), MAX_LABEL)
}

/// Gives every margin arrow a lane (0 nearest the boxes) so that no two arrows whose rows
/// overlap share one. Shorter arrows are placed first, so they nest inside longer ones.
/// Two arrows that only meet at one box, one above it and one below, may share a lane:
/// their ends on that box are ordered so they do not touch (see [`Layout::new`]).
fn assign_lanes(edges: &[Edge]) -> Vec<usize> {
    let overlap = |a: (usize, usize), b: (usize, usize)| a == b || (a.0 < b.1 && b.0 < a.1);
    let mut order: Vec<usize> = (0..edges.len())
        .filter(|&i| !edges[i].is_straight())
        .collect();
    order.sort_by_key(|&i| {
        let (top, bottom) = edges[i].span();
        (bottom - top, top)
    });
    let mut lanes = vec![0; edges.len()];
    let mut placed: Vec<usize> = Vec::new();
    for i in order {
        let span = edges[i].span();
        let mut lane = 0;
        while placed
            .iter()
            .any(|&j| lanes[j] == lane && overlap(edges[j].span(), span))
        {
            lane += 1;
        }
        lanes[i] = lane;
        placed.push(i);
    }
    lanes
}

/// Positions: each box's top and height, and where each margin arrow leaves and enters.
struct Layout {
    tops: Vec<i32>,
    heights: Vec<i32>,
    /// Per edge: the y of its start and end on the boxes' right side (margin arrows only).
    ports: Vec<(i32, i32)>,
    width: i32,
    height: i32,
}

impl Layout {
    fn new(nodes: &[Node], edges: &[Edge]) -> Layout {
        // The ends of margin arrows on each box, ordered top to bottom so arrows do not
        // cross near the box: those going up first (inner lanes highest), then loops back
        // to the box itself, then those going down (inner lanes lowest).
        let mut ends: Vec<Vec<(usize, bool)>> = vec![Vec::new(); nodes.len()];
        for (i, edge) in edges.iter().enumerate() {
            if !edge.is_straight() {
                ends[edge.from].push((i, true));
                ends[edge.to].push((i, false));
            }
        }
        for (node, list) in ends.iter_mut().enumerate() {
            list.sort_by_key(|&(i, leaving)| {
                let edge = &edges[i];
                let other = if leaving { edge.to } else { edge.from };
                let lane = edge.lane as i64;
                if other < node {
                    (0, lane, 0)
                } else if other == node {
                    (1, 0, if leaving { 0 } else { 1 })
                } else {
                    (2, -lane, 0)
                }
            });
        }

        let heights: Vec<i32> = nodes
            .iter()
            .zip(&ends)
            .map(|(node, list)| node.base_height().max((list.len() as i32 + 1) * PORT_GAP))
            .collect();
        let mut tops = Vec::with_capacity(nodes.len());
        let mut y = MARGIN;
        for height in &heights {
            tops.push(y);
            y += height + GAP;
        }
        let height = y - GAP + MARGIN;

        let mut ports = vec![(0, 0); edges.len()];
        for (node, list) in ends.iter().enumerate() {
            let step = heights[node] / (list.len() as i32 + 1);
            let mut y = tops[node] + step + (heights[node] - step * (list.len() as i32 + 1)) / 2;
            for &(i, leaving) in list {
                if leaving {
                    ports[i].0 = y;
                } else {
                    ports[i].1 = y;
                }
                y += step;
            }
        }

        let right = MARGIN + BOX_WIDTH;
        let mut width = right + MARGIN;
        for edge in edges {
            let label = edge.label.chars().count() as i32 * LABEL_CHAR;
            let reach = if edge.is_straight() {
                MARGIN + BOX_WIDTH / 2 + 8 + label
            } else {
                (lane_x(edge.lane) + 4).max(right + 6 + label)
            };
            width = width.max(reach + MARGIN);
        }
        Layout {
            tops,
            heights,
            ports,
            width,
            height,
        }
    }
}

/// The x of a margin lane's vertical stretch.
fn lane_x(lane: usize) -> i32 {
    MARGIN + BOX_WIDTH + LANE_START + lane as i32 * LANE_GAP
}

fn write_svg(
    out: &mut String,
    name: &str,
    nodes: &[Node],
    edges: &[Edge],
    layout: &Layout,
) -> std::fmt::Result {
    let label = escape(&format!("Step graph of {name}"));
    let (width, height) = (layout.width, layout.height);
    writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="step-graph" role="img" aria-label="{label}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">"#
    )?;
    writeln!(out, "<title>{label}</title>")?;
    writeln!(
        out,
        "<defs>{}{}</defs>",
        marker("baton-arrow", EDGE_COLOUR),
        marker("baton-arrow-error", ERROR_COLOUR)
    )?;
    writeln!(out, r#"<g class="nodes">"#)?;
    for (i, node) in nodes.iter().enumerate() {
        write_node(out, node, layout.tops[i], layout.heights[i])?;
    }
    writeln!(out, "</g>")?;
    writeln!(out, r#"<g class="edges">"#)?;
    for (i, edge) in edges.iter().enumerate() {
        write_edge(out, nodes, edge, layout, layout.ports[i])?;
    }
    writeln!(out, "</g>")?;
    out.push_str("</svg>");
    Ok(())
}

/// An arrowhead in `colour` (one per colour: `context-stroke` is not supported widely
/// enough yet).
fn marker(id: &str, colour: &str) -> String {
    format!(
        r#"<marker id="{id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>"#
    )
}

fn write_node(out: &mut String, node: &Node, top: i32, height: i32) -> std::fmt::Result {
    let (fill, stroke) = node.colours();
    let x = MARGIN;
    let step = node.id.as_deref().unwrap_or(END);
    let radius = if node.id.is_none() { height / 2 } else { 6 };
    writeln!(
        out,
        r#"<g class="node {}" data-step="{}">"#,
        node.class,
        escape(step)
    )?;
    let tooltip = match &node.id {
        Some(id) if node.escalates => format!(
            "{id}\n{}\non error: escalates to a person (exception queue)",
            node.detail
        ),
        Some(id) => format!("{id}\n{}", node.detail),
        None => node.detail.clone(),
    };
    writeln!(out, "<title>{}</title>", escape(&tooltip))?;
    writeln!(
        out,
        r#"<rect x="{x}" y="{top}" width="{BOX_WIDTH}" height="{height}" rx="{radius}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#
    )?;
    let Some(id) = &node.id else {
        let (cx, cy) = (x + BOX_WIDTH / 2, top + height / 2 + 4);
        return writeln!(
            out,
            r##"<text class="terminal-label" x="{cx}" y="{cy}" text-anchor="middle" font-weight="bold" fill="#1f5e3b">run succeeds</text></g>"##
        );
    };
    // The text block is centred vertically when margin arrows made the box taller.
    let text_x = x + 10;
    let mut y = top + (height - node.base_height()) / 2 + 19;
    writeln!(
        out,
        r##"<text class="id" x="{text_x}" y="{y}" font-weight="bold" font-size="13" fill="#1a1a1a">{}</text>"##,
        escape(&shorten(id, MAX_ID))
    )?;
    y += LINE;
    writeln!(
        out,
        r##"<text class="kind" x="{text_x}" y="{y}" font-size="11" fill="#444444">{}</text>"##,
        escape(&node.kind)
    )?;
    if node.escalates {
        y += LINE;
        writeln!(
            out,
            r##"<text class="note escalates" x="{text_x}" y="{y}" font-size="11" fill="#a35a00">⚠ escalates to a person</text>"##
        )?;
    }
    writeln!(out, "</g>")
}

fn write_edge(
    out: &mut String,
    nodes: &[Node],
    edge: &Edge,
    layout: &Layout,
    (start, end): (i32, i32),
) -> std::fmt::Result {
    let kind = if edge.is_straight() { "next" } else { "jump" };
    let error = if edge.error { " error" } else { "" };
    let (colour, dash, arrow) = if edge.error {
        (
            ERROR_COLOUR,
            r#" stroke-dasharray="4 3""#,
            "baton-arrow-error",
        )
    } else {
        (EDGE_COLOUR, "", "baton-arrow")
    };
    let id = |i: usize| escape(nodes[i].id.as_deref().unwrap_or(END));
    writeln!(
        out,
        r#"<g class="edge {kind}{error}" data-from="{}" data-to="{}">"#,
        id(edge.from),
        id(edge.to)
    )?;
    let (d, label_x, label_y) = if edge.is_straight() {
        let x = MARGIN + BOX_WIDTH / 2;
        let y1 = layout.tops[edge.from] + layout.heights[edge.from];
        let y2 = layout.tops[edge.to];
        (format!("M{x},{y1} V{y2}"), x + 8, (y1 + y2) / 2 + 4)
    } else {
        let right = MARGIN + BOX_WIDTH;
        (
            margin_path(right, start, end, lane_x(edge.lane)),
            right + 6,
            start - 4,
        )
    };
    writeln!(
        out,
        r#"<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.4"{dash} marker-end="url(#{arrow})"/>"#
    )?;
    if !edge.label.is_empty() {
        writeln!(
            out,
            r##"<text class="label" x="{label_x}" y="{label_y}" font-size="11" fill="{colour}" stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke">{}</text>"##,
            escape(&edge.label)
        )?;
    }
    writeln!(out, "</g>")
}

/// A margin arrow from (`right`, `start`) out to the lane at `lane`, along it, and back to
/// (`right`, `end`), with rounded (cubic) corners.
fn margin_path(right: i32, start: i32, end: i32, lane: i32) -> String {
    let dir = if end >= start { 1 } else { -1 };
    let radius = CORNER.min((end - start).abs() / 2);
    format!(
        "M{right},{start} H{} C{lane},{start} {lane},{start} {lane},{} V{} C{lane},{end} {lane},{end} {},{end} H{right}",
        lane - radius,
        start + dir * radius,
        end - dir * radius,
        lane - radius,
    )
}

/// `text` on one line: runs of whitespace become one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` on one line, cut to `max` characters with `…` when longer.
fn shorten(text: &str, max: usize) -> String {
    let text = one_line(text);
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// `text` for XML character data and attribute values. Characters XML 1.0 cannot hold
/// (control characters other than tab and newlines) are dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::definition::{Format, parse};

    fn svg(yaml: &str) -> String {
        let definition = parse(yaml, Format::Yaml).expect("the test definition parses");
        let svg = draw(&definition);
        assert_well_formed(&svg);
        svg
    }

    /// How many `<text class="id" …>ID</text>` there are: the boxes showing step `id`.
    fn id_nodes(svg: &str, id: &str) -> usize {
        svg.lines()
            .filter(|l| {
                l.starts_with(r#"<text class="id""#) && l.ends_with(&format!(">{id}</text>"))
            })
            .count()
    }

    fn edge(svg: &str, kind: &str, from: &str, to: &str) -> bool {
        svg.contains(&format!(
            r#"<g class="edge {kind}" data-from="{from}" data-to="{to}">"#
        ))
    }

    /// The first line (`<g …>`) and the label of every edge leaving `from`.
    fn edges_from<'a>(svg: &'a str, from: &str) -> Vec<&'a str> {
        let needle = format!(r#"data-from="{from}""#);
        svg.split("<g class=\"edge ")
            .skip(1)
            .filter(|chunk| chunk.lines().next().is_some_and(|l| l.contains(&needle)))
            .collect()
    }

    /// Well-formedness without an XML parser: every tag closes in order, attribute
    /// values hold no `<`, and every `&` starts one of the five entities.
    fn assert_well_formed(svg: &str) {
        assert_eq!(
            svg.matches("<g").count(),
            svg.matches("</g>").count(),
            "{svg}"
        );
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            assert_entities(text);
            let close = rest[open..].find('>').expect("a tag ends") + open;
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "`<` inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "closing </{name}> in {svg}");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().expect("a tag name");
                stack.push(name);
            }
            assert_entities(tag);
            assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
            rest = &rest[close + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert!(rest.trim().is_empty());
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
    }

    fn assert_entities(text: &str) {
        for (i, _) in text.match_indices('&') {
            let entity = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"];
            assert!(
                entity.iter().any(|e| text[i..].starts_with(e)),
                "a bare `&` in {text}"
            );
        }
    }

    const ROUTED: &str = r#"
name: routed
steps:
  - id: match
    rule: invoice-rules/three-way-match
    next: { approve: post, review: approval, reject: rejected }
  - id: approval
    human:
      title: Approve the invoice
    next: { approved: post, rejected: rejected }
  - id: post
    call: http/request
    on_error: escalate
  - id: done
    end: true
  - id: rejected
    fail: { code: rejected }
"#;

    #[test]
    fn every_step_is_one_box_with_its_kind() {
        let svg = svg(ROUTED);
        for id in ["match", "approval", "post", "done", "rejected"] {
            assert_eq!(id_nodes(&svg, id), 1, "{id} in {svg}");
            assert_eq!(svg.matches(&format!(r#"data-step="{id}""#)).count(), 1);
        }
        assert!(svg.contains(r#"<g class="node rule" data-step="match">"#));
        assert!(svg.contains(r#"<g class="node human" data-step="approval">"#));
        assert!(svg.contains(r#"<g class="node end" data-step="done">"#));
        assert!(svg.contains(r#"<g class="node fail" data-step="rejected">"#));
        assert!(svg.contains(">rule invoice-rules/three-way-match</text>"));
        assert!(svg.contains(">human: Approve the invoice</text>"));
        assert!(svg.contains(">call http/request</text>"));
        assert!(svg.contains(">fail rejected</text>"));
        assert!(svg.contains(r#"role="img" aria-label="Step graph of routed""#));
        assert!(svg.contains("<marker id=\"baton-arrow\""));
        // Nothing ends the run by falling off the list: no final box.
        assert!(!svg.contains("node terminal"));
    }

    #[test]
    fn routes_are_labelled_jumps_and_end_and_fail_lead_nowhere() {
        let svg = svg(ROUTED);
        // A route to the following step is the straight arrow, with its label.
        assert!(edge(&svg, "next", "match", "approval"));
        assert!(edge(&svg, "jump", "match", "post"));
        assert!(edge(&svg, "jump", "match", "rejected"));
        assert!(edge(&svg, "next", "approval", "post"));
        assert!(edge(&svg, "jump", "approval", "rejected"));
        for label in ["approve", "review", "reject", "approved", "rejected"] {
            assert!(
                svg.contains(&format!(">{label}</text>")),
                "{label} in {svg}"
            );
        }
        // `post` has no `next`: it falls through to `done`.
        assert_eq!(edges_from(&svg, "post").len(), 1);
        assert!(edge(&svg, "next", "post", "done"));
        // After `end` and `fail`: no arrow at all.
        assert!(edges_from(&svg, "done").is_empty(), "{svg}");
        assert!(edges_from(&svg, "rejected").is_empty(), "{svg}");
        assert_eq!(svg.matches(r#"class="edge next""#).count(), 3);
        assert_eq!(svg.matches(r#"class="edge jump""#).count(), 3);
        // Escalation is a note on the box, not an arrow.
        assert!(svg.contains("⚠ escalates to a person"));
    }

    #[test]
    fn a_routed_step_without_else_does_not_fall_through() {
        let svg = svg(
            "name: x\nsteps:\n  - id: ask\n    human: { title: Decide }\n    next: { approved: b }\n  - id: a\n    call: echo/echo\n  - id: b\n    call: echo/echo\n",
        );
        assert_eq!(edges_from(&svg, "ask").len(), 1, "{svg}");
        assert!(edge(&svg, "jump", "ask", "b"));
        // `b` is last and falls off the list: the run succeeds.
        assert!(edge(&svg, "next", "b", "end"));
        assert!(svg.contains(r#"<g class="node terminal" data-step="end">"#));
        assert!(svg.contains(">run succeeds</text>"));
    }

    #[test]
    fn branches_draw_their_cases_and_else() {
        let svg = svg(r#"
name: sizes
steps:
  - id: size
    branch:
      - if: .input.amount > 10000
        next: director
      - if: .input.amount > 1000
        next: manager
    else: post
  - id: manager
    human: { title: Manager }
    next: post
  - id: director
    human: { title: Director }
  - id: post
    call: erp/post
  - id: check
    branch:
      - if: .input.again
        next: size
  - id: done
    end: true
"#);
        assert!(edge(&svg, "next", "size", "manager"));
        assert!(edge(&svg, "jump", "size", "director"));
        assert!(edge(&svg, "jump", "size", "post"));
        assert!(svg.contains(">if .input.amount &gt; 10000</text>"), "{svg}");
        assert!(svg.contains(">if .input.amount &gt; 1000</text>"), "{svg}");
        assert!(svg.contains(">else</text>"));
        // `next` to a later step is a jump without a label; it never falls through.
        assert!(edge(&svg, "jump", "manager", "post"));
        assert_eq!(edges_from(&svg, "manager").len(), 1);
        // A branch without `else` goes on with the following step when nothing matches,
        // and a jump back up is drawn as well.
        assert!(edge(&svg, "next", "check", "done"));
        assert!(edge(&svg, "jump", "check", "size"));
        assert!(svg.contains(r#"<g class="node branch" data-step="size">"#));
        assert!(!svg.contains("node terminal"));
    }

    #[test]
    fn on_error_goto_is_a_dashed_jump() {
        let svg = svg(r#"
name: waits
steps:
  - id: paid
    wait: { event: payment, timeout: 7d }
    on_error: { goto: remind }
  - id: done
    end: true
  - id: remind
    call: notify/send
    next: paid
"#);
        assert!(svg.contains(">wait event payment</text>"));
        assert!(edge(&svg, "next", "paid", "done"));
        assert!(edge(&svg, "jump error", "paid", "remind"));
        assert!(svg.contains(">on error</text>"));
        assert!(svg.contains(r#"stroke-dasharray="4 3""#));
        assert!(edge(&svg, "jump", "remind", "paid"));
        // Two margin arrows over the same rows take separate lanes.
        let lanes: Vec<&str> = svg
            .lines()
            .filter(|l| l.starts_with("<path d=\"M316,"))
            .collect();
        assert_eq!(lanes.len(), 2, "{svg}");
        assert_ne!(lane_of(lanes[0]), lane_of(lanes[1]));
    }

    /// The x of the vertical stretch of a margin arrow (`… V…` follows it).
    fn lane_of(path: &str) -> &str {
        let before_v = &path[..path.find(" V").unwrap()];
        before_v
            .rsplit(' ')
            .next()
            .unwrap()
            .split(',')
            .next()
            .unwrap()
    }

    #[test]
    fn next_end_leads_to_the_final_box() {
        let svg = svg(
            "name: x\nsteps:\n  - id: a\n    rule: r/check\n    next: { ok: end, retry: a }\n  - id: b\n    call: echo/echo\n",
        );
        assert!(edge(&svg, "jump", "a", "end"), "{svg}");
        assert!(edge(&svg, "jump", "a", "a"), "{svg}");
        assert!(edge(&svg, "next", "b", "end"));
        assert!(!edge(&svg, "next", "a", "b"));
        assert!(svg.contains(">ok</text>") && svg.contains(">retry</text>"));
    }

    #[test]
    fn containers_list_their_steps() {
        let svg = svg(r#"
name: containers
steps:
  - id: gather
    parallel:
      po:
        - id: get-po
          call: erp/get-po
        - id: check-po
          call: erp/check
      receipt:
        - id: get-receipt
          call: erp/get-receipt
  - id: lines
    for_each: .input.lines
    steps:
      - id: check
        call: erp/price
      - id: post
        call: erp/post
"#);
        assert!(
            svg.contains(">parallel: get-po, check-po | get-receipt</text>"),
            "{svg}"
        );
        assert!(
            svg.contains(">for each .input.lines: check, post</text>"),
            "{svg}"
        );
        assert!(svg.contains("node parallel") && svg.contains("node for-each"));
        assert_eq!(id_nodes(&svg, "get-po"), 0);
        assert!(edge(&svg, "next", "gather", "lines"));
    }

    #[test]
    fn text_is_escaped() {
        let svg = svg(
            "name: x\nsteps:\n  - id: ask\n    human: { title: \"Is <&> \\\"ok\\\" or 'not'?\" }\n",
        );
        assert!(
            svg.contains("human: Is &lt;&amp;&gt; &quot;ok&quot; or &apos;not&apos;?"),
            "{svg}"
        );
        assert!(!svg.contains("<&>"));
    }

    #[test]
    fn long_text_is_shortened_on_the_box_and_whole_in_the_tooltip() {
        let title = "Check the fields read from the invoice against the scanned document";
        let svg = svg(&format!(
            "name: x\nsteps:\n  - id: ask\n    human: {{ title: {title} }}\n"
        ));
        assert!(
            svg.contains(">human: Check the fields read from the…</text>"),
            "{svg}"
        );
        assert!(svg.contains(&format!("human: {title}")));
        assert_eq!(shorten("a  b\n c", 10), "a b c");
        assert_eq!(shorten("abcdef", 4), "abc…");
    }

    #[test]
    fn the_invoice_example_draws() {
        let source = include_str!("../../../../examples/invoice/workflow.yaml");
        let definition = parse(source, Format::Yaml).unwrap();
        let svg = draw(&definition);
        assert_well_formed(&svg);
        for step in &definition.steps {
            assert_eq!(id_nodes(&svg, &step.id), 1, "{} in {svg}", step.id);
        }
        assert!(svg.contains(r#"aria-label="Step graph of invoice-approval""#));
        assert!(edge(&svg, "jump", "check-reading", "vendor"));
        assert!(edge(&svg, "next", "check-reading", "review-reading"));
        assert!(edge(&svg, "jump", "manager-approval", "rejected-notice"));
        assert!(edges_from(&svg, "paid").is_empty());
        assert!(edges_from(&svg, "rejected").is_empty());
        // `rejected-notice` falls through to `rejected`, which ends the run.
        assert!(edge(&svg, "next", "rejected-notice", "rejected"));
        assert!(!svg.contains("node terminal"));
        let viewbox = svg.split("viewBox=\"0 0 ").nth(1).unwrap();
        let dims: Vec<i32> = viewbox
            .split('"')
            .next()
            .unwrap()
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(dims[0] > BOX_WIDTH && dims[1] > 15 * BOX_HEIGHT, "{dims:?}");
    }

    #[test]
    fn an_empty_definition_draws() {
        let svg = draw(&Definition {
            name: "empty".to_owned(),
            description: None,
            key: None,
            input_schema: None,
            output: None,
            steps: Vec::new(),
        });
        assert_well_formed(&svg);
    }
}
