//! PLaG prompts: the asynchronous-planning question, optionally with the plan's graph in
//! one of the paper's four encodings, or with the "build a graph" (BaG) instruction.
//!
//! The text follows `generate_prompt` in the paper's generator
//! (`data_gen/generate_graph_prompt.py`, fangru-lin/graph-llm-asynchow-plan), including
//! its quirks, so that prompts for AsyncHow tasks are the paper's prompts:
//! - graph nodes are ordered as sorted *strings* ("1", "10", "2", …, "END", "START"),
//!   although the prompt says "1 to n, 'END', 'START'" — the two agree below 10 steps;
//! - the CSR's column indices follow the edge list's order, as the generator builds them;
//! - graphs and dictionaries are printed as Python would print them.
//!
//! One difference: the published function keeps its source indentation inside the
//! template, which leaves four spaces after some line breaks and, in plans without a
//! graph or without constraints, the literal placeholders "[GRAPH]" and
//! "[ORDERING CONSTRAINTS]" in the text. We emit the evidently intended text; the test
//! fixtures were made by the reference function with its template dedented.

use super::Plan;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphEncoding {
    None,
    AdjacencyList,
    AdjacencyMatrix,
    Csr,
    EdgeList,
}

impl GraphEncoding {
    pub const NAMES: [&'static str; 5] = [
        "none",
        "adjacency-list",
        "adjacency-matrix",
        "csr",
        "edge-list",
    ];

    pub fn name(self) -> &'static str {
        match self {
            GraphEncoding::None => "none",
            GraphEncoding::AdjacencyList => "adjacency-list",
            GraphEncoding::AdjacencyMatrix => "adjacency-matrix",
            GraphEncoding::Csr => "csr",
            GraphEncoding::EdgeList => "edge-list",
        }
    }
}

impl std::str::FromStr for GraphEncoding {
    type Err = PromptError;
    fn from_str(s: &str) -> Result<GraphEncoding, PromptError> {
        Ok(
            match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
                "none" | "" => GraphEncoding::None,
                "adjacency-list" => GraphEncoding::AdjacencyList,
                "adjacency-matrix" => GraphEncoding::AdjacencyMatrix,
                "csr" => GraphEncoding::Csr,
                "edge-list" => GraphEncoding::EdgeList,
                _ => return Err(PromptError::UnknownEncoding(s.to_string())),
            },
        )
    }
}

/// The paper's ten phrasings of a precedence constraint.
pub const ORDERING_TEMPLATES: [&str; 10] = [
    "Before starting [following step], complete [preceding step].",
    "[preceding step] must precede [following step].",
    "Upon completing [preceding step], proceed to [following step].",
    "After [preceding step], [following step] should commence.",
    "Prioritize [preceding step] before advancing to [following step].",
    "[preceding step] is a prerequisite for [following step].",
    "Initiate [following step] subsequent to [preceding step].",
    "Ensure [preceding step] is done before [following step].",
    "Sequence the tasks: firstly [preceding step], then [following step].",
    "[following step] follows the completion of [preceding step].",
];
/// "[preceding step] must precede [following step].", the generator's default.
pub const DEFAULT_ORDERING_TEMPLATE: usize = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PromptOptions {
    pub encoding: GraphEncoding,
    /// "Build a graph": ask the model to construct the graph itself.
    pub bag: bool,
    /// "Let's think step by step".
    pub chain_of_thought: bool,
    /// Index into [`ORDERING_TEMPLATES`].
    pub ordering_template: usize,
}

impl Default for PromptOptions {
    fn default() -> PromptOptions {
        PromptOptions {
            encoding: GraphEncoding::None,
            bag: false,
            chain_of_thought: false,
            ordering_template: DEFAULT_ORDERING_TEMPLATE,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("unknown graph encoding {0:?} (expected one of: none, adjacency-list, adjacency-matrix, csr, edge-list)")]
    UnknownEncoding(String),
    #[error("BaG asks the model to build the graph itself, so it cannot be combined with the {0} encoding (use --encoding none)")]
    BagWithGraph(&'static str),
    #[error("ordering template {0} does not exist (expected 0 to 9)")]
    UnknownTemplate(usize),
}

const ANSWER_INSTRUCTION: &str = "Answer the time in double quotes.";
const BAG_INSTRUCTION: &str = "Let's construct a graph with the nodes and edges first to represent step ordering constraints, and also construct a dictionary to represent time needed for each step. Use the graph and dictionary to calculate the shortest possible time needed for the task. ";
const COT_INSTRUCTION: &str = "Let's think step by step and then answer the time in double quotes.";

pub fn prompt(plan: &Plan, options: PromptOptions) -> Result<String, PromptError> {
    let template = *ORDERING_TEMPLATES
        .get(options.ordering_template)
        .ok_or(PromptError::UnknownTemplate(options.ordering_template))?;
    if options.bag && options.encoding != GraphEncoding::None {
        return Err(PromptError::BagWithGraph(options.encoding.name()));
    }
    let task = plan.title().replace("How to ", "");
    let mut text = format!("To {task}, here are the steps and the times needed for each step.\n");
    for (i, step) in plan.steps().iter().enumerate() {
        text.push_str(&format!(
            "Step {}. {} ({})\n",
            i + 1,
            step.text,
            step.duration_text
        ));
    }
    if plan.constraints().is_empty() {
        text.push_str("\nAll steps can be executed in parallel.");
    } else {
        text.push_str(
            "\n\nThese ordering constraints need to be obeyed when executing above steps:\n",
        );
        let mut lines: Vec<String> = plan
            .constraints()
            .iter()
            .map(|&(before, after)| {
                let line = template
                    .replace("[preceding step]", &format!("step {}", before + 1))
                    .replace("[following step]", &format!("step {}", after + 1));
                python_capitalize(&format!("{line}\n"))
            })
            .collect();
        lines.sort();
        text.push_str(&lines.concat());
    }
    if options.encoding != GraphEncoding::None {
        text.push_str("\n\n");
        text.push_str(&graph_text(plan, options.encoding));
    }
    let mut instruction = ANSWER_INSTRUCTION.to_string();
    if options.bag {
        instruction = format!("{BAG_INSTRUCTION}{ANSWER_INSTRUCTION}");
    }
    if options.chain_of_thought {
        instruction = instruction.replace(ANSWER_INSTRUCTION, COT_INSTRUCTION);
    }
    text.push_str(&format!(
        "\n\nQuestion: Assume that you need to execute all the steps to complete the task and that infinite resources are available. What is the shortest possible time to {task}? {instruction}\nAnswer:"
    ));
    Ok(text)
}

fn graph_text(plan: &Plan, encoding: GraphEncoding) -> String {
    let graph = GraphStructures::of(plan);
    let n = plan.steps().len();
    let times = py_dict(
        graph
            .time_entries(plan)
            .iter()
            .map(|(k, v)| (py_str(k), py_str(v))),
    );
    let order_note = format!("(assuming the node order to be 1 to {n}, 'END', 'START')");
    let body = match encoding {
        GraphEncoding::AdjacencyList => format!(
            "Here is the adjacency list representation of the step ordering constraints:\n{}",
            py_dict(
                graph
                    .adjacency_list
                    .iter()
                    .map(|(node, succ)| (py_str(node), py_list(succ.iter().map(|s| py_str(s)))))
            )
        ),
        GraphEncoding::AdjacencyMatrix => format!(
            "Here is the adjacency matrix representation of the step ordering constraints {order_note}:\n{}",
            py_list(graph.adjacency_matrix.iter().map(|row| py_list(row.iter().map(u8::to_string))))
        ),
        GraphEncoding::Csr => format!(
            "Here is the compressed sparse row representation of the step ordering constraints {order_note}:\nValues: {}\nRow indices: {}\nColumn indices: {}",
            py_list(graph.csr.values.iter().map(u8::to_string)),
            py_list(graph.csr.row_indices.iter().map(usize::to_string)),
            py_list(graph.csr.col_indices.iter().map(usize::to_string)),
        ),
        GraphEncoding::EdgeList => format!(
            "Here is the edge list representation of the step ordering constraints:\n{}",
            py_list(
                graph
                    .edge_list
                    .iter()
                    .map(|(a, b)| format!("({}, {})", py_str(a), py_str(b)))
            )
        ),
        GraphEncoding::None => return String::new(),
    };
    format!("{body}\nTime for each step can be represented as a dictionary:\n{times}")
}

pub struct Csr {
    pub values: Vec<u8>,
    pub row_indices: Vec<usize>,
    pub col_indices: Vec<usize>,
}

/// The graph with START and END, in the generator's four structures. Steps are numbered
/// 1..n by their position in the plan.
pub struct GraphStructures {
    pub edge_list: Vec<(String, String)>,
    /// Node labels sorted as strings, the order of the matrix and CSR rows.
    pub nodes: Vec<String>,
    pub adjacency_list: Vec<(String, Vec<String>)>,
    pub adjacency_matrix: Vec<Vec<u8>>,
    pub csr: Csr,
}

impl GraphStructures {
    /// The constraints in their order, then START→s for every step without predecessor,
    /// then s→END for every step without successor, as `generate_edge_list` builds it.
    pub fn canonical_edge_list(plan: &Plan) -> Vec<(String, String)> {
        let number = |i: usize| (i + 1).to_string();
        let n = plan.steps().len();
        let mut edges: Vec<(String, String)> = plan
            .constraints()
            .iter()
            .map(|&(a, b)| (number(a), number(b)))
            .collect();
        edges.extend(
            (0..n)
                .filter(|&i| plan.predecessors(i).is_empty())
                .map(|i| ("START".to_string(), number(i))),
        );
        edges.extend(
            (0..n)
                .filter(|&i| plan.successors(i).is_empty())
                .map(|i| (number(i), "END".to_string())),
        );
        edges
    }

    pub fn of(plan: &Plan) -> GraphStructures {
        let edge_list = match plan.asynchow_layout() {
            Some(layout) => layout.edge_list.clone(),
            None => GraphStructures::canonical_edge_list(plan),
        };
        let mut nodes: Vec<String> = edge_list
            .iter()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect();
        nodes.sort();
        nodes.dedup();
        let index = |label: &str| {
            nodes
                .binary_search_by(|n| n.as_str().cmp(label))
                .unwrap_or(0)
        };
        let size = nodes.len();
        let mut adjacency_list: Vec<(String, Vec<String>)> =
            nodes.iter().map(|n| (n.clone(), Vec::new())).collect();
        let mut adjacency_matrix = vec![vec![0u8; size]; size];
        let mut values = Vec::with_capacity(edge_list.len());
        let mut col_indices = Vec::with_capacity(edge_list.len());
        let mut row_indices = vec![0usize; size + 1];
        for (u, v) in &edge_list {
            let (row, col) = (index(u), index(v));
            adjacency_list[row].1.push(v.clone());
            adjacency_matrix[row][col] = 1;
            values.push(1);
            col_indices.push(col);
            row_indices[row + 1] += 1;
        }
        for i in 1..row_indices.len() {
            row_indices[i] += row_indices[i - 1];
        }
        GraphStructures {
            edge_list,
            adjacency_list,
            adjacency_matrix,
            csr: Csr {
                values,
                row_indices,
                col_indices,
            },
            nodes,
        }
    }

    /// (step number, duration phrase) in the record's order, or 1..n.
    pub fn time_entries(&self, plan: &Plan) -> Vec<(String, String)> {
        let text_of = |key: &str| {
            key.parse::<usize>()
                .ok()
                .and_then(|k| k.checked_sub(1))
                .and_then(|i| plan.steps().get(i))
                .map(|s| s.duration_text.clone())
                .unwrap_or_default()
        };
        match plan.asynchow_layout() {
            Some(layout) => layout
                .time_keys
                .iter()
                .map(|k| (k.clone(), text_of(k)))
                .collect(),
            None => (1..=plan.steps().len())
                .map(|i| (i.to_string(), text_of(&i.to_string())))
                .collect(),
        }
    }
}

/// Python's `str.capitalize`: first character upper case, the rest lower case.
fn python_capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// Python's `repr` of a `str`.
fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn py_list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

fn py_dict(items: impl Iterator<Item = (String, String)>) -> String {
    let body: Vec<String> = items.map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", body.join(", "))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{edges, step};
    use super::*;

    fn plan() -> Plan {
        Plan::new(
            "How to make tea",
            vec![step("a", "5 min"), step("b", "1 min"), step("c", "3 min")],
            &edges(&[("b", "c"), ("a", "c")]),
        )
        .unwrap()
    }

    #[test]
    fn base_prompt_sorts_constraints_and_names_the_task() {
        let p = prompt(&plan(), PromptOptions::default()).unwrap();
        assert_eq!(
            p,
            "To make tea, here are the steps and the times needed for each step.\n\
             Step 1. do a (5 min)\nStep 2. do b (1 min)\nStep 3. do c (3 min)\n\n\n\
             These ordering constraints need to be obeyed when executing above steps:\n\
             Step 1 must precede step 3.\nStep 2 must precede step 3.\n\n\n\
             Question: Assume that you need to execute all the steps to complete the task and that infinite resources are available. What is the shortest possible time to make tea? Answer the time in double quotes.\nAnswer:"
        );
    }

    #[test]
    fn parallel_plans_say_so() {
        let plan = Plan::new(
            "How to relax",
            vec![step("a", "1 hour"), step("b", "2 hour")],
            &[],
        )
        .unwrap();
        let p = prompt(&plan, PromptOptions::default()).unwrap();
        assert!(
            p.contains(
                "Step 2. do b (2 hour)\n\nAll steps can be executed in parallel.\n\nQuestion:"
            ),
            "{p}"
        );
    }

    #[test]
    fn each_encoding_prints_the_graph_as_python_would() {
        let with = |encoding| {
            prompt(
                &plan(),
                PromptOptions {
                    encoding,
                    ..Default::default()
                },
            )
            .unwrap()
        };
        assert!(with(GraphEncoding::EdgeList).contains(
            "[('2', '3'), ('1', '3'), ('START', '1'), ('START', '2'), ('3', 'END')]\nTime for each step can be represented as a dictionary:\n{'1': '5 min', '2': '1 min', '3': '3 min'}\n\nQuestion:"
        ));
        assert!(with(GraphEncoding::AdjacencyList)
            .contains("{'1': ['3'], '2': ['3'], '3': ['END'], 'END': [], 'START': ['1', '2']}"));
        assert!(with(GraphEncoding::AdjacencyMatrix).contains(
            "(assuming the node order to be 1 to 3, 'END', 'START'):\n[[0, 0, 1, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 0, 0, 0]]"
        ));
        assert!(with(GraphEncoding::Csr).contains(
            "Values: [1, 1, 1, 1, 1]\nRow indices: [0, 1, 2, 3, 3, 5]\nColumn indices: [2, 2, 0, 1, 3]"
        ));
    }

    #[test]
    fn bag_and_chain_of_thought() {
        let p = prompt(
            &plan(),
            PromptOptions {
                bag: true,
                chain_of_thought: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(p.ends_with("Use the graph and dictionary to calculate the shortest possible time needed for the task. Let's think step by step and then answer the time in double quotes.\nAnswer:"));
        let err = prompt(
            &plan(),
            PromptOptions {
                bag: true,
                encoding: GraphEncoding::Csr,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(err, PromptError::BagWithGraph("csr"));
    }

    #[test]
    fn other_templates_and_bad_options() {
        let p = prompt(
            &plan(),
            PromptOptions {
                ordering_template: 0,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(p.contains("Before starting step 3, complete step 1.\n"));
        assert_eq!(
            prompt(
                &plan(),
                PromptOptions {
                    ordering_template: 10,
                    ..Default::default()
                }
            ),
            Err(PromptError::UnknownTemplate(10))
        );
        assert_eq!(
            "adjacency matrix".parse::<GraphEncoding>(),
            Err(PromptError::UnknownEncoding("adjacency matrix".into()))
        );
        assert_eq!(
            "adjacency_list".parse::<GraphEncoding>(),
            Ok(GraphEncoding::AdjacencyList)
        );
    }

    #[test]
    fn python_reprs() {
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(py_str("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(python_capitalize("step 1 Must"), "Step 1 must");
    }
}
