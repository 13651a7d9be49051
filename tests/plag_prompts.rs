//! PLaG prompts for AsyncHow tasks equal the paper's generator's output, in every
//! encoding, with BaG and chain of thought (fixtures: tests/fixtures/plag_prompts).

use latentlab::core::plan::{parse_plan_value, prompt, GraphEncoding, PromptOptions};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    file: String,
    line: usize,
    encoding: String,
    bag: bool,
    chain_of_thought: bool,
    ordering_template: usize,
    prompt: String,
}

#[test]
fn prompts_equal_the_reference_generator() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let cases: Vec<Case> = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}/plag_prompts/prompts.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cases.len(), 72);
    for case in cases {
        let text = std::fs::read_to_string(format!("{dir}/asynchow/{}", case.file)).unwrap();
        let record: serde_json::Value =
            serde_json::from_str(text.lines().nth(case.line - 1).unwrap()).unwrap();
        let plan = parse_plan_value(&record).unwrap();
        let options = PromptOptions {
            encoding: case.encoding.parse::<GraphEncoding>().unwrap(),
            bag: case.bag,
            chain_of_thought: case.chain_of_thought,
            ordering_template: case.ordering_template,
        };
        let ours = prompt(&plan, options).unwrap();
        assert_eq!(
            ours, case.prompt,
            "{}:{} {:?}",
            case.file, case.line, options
        );
    }
}
