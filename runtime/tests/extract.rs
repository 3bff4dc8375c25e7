//! Answer extraction: each rule, their priority, and hostile inputs.

use resyn_runtime::extract::MAX_JSON_DEPTH;
use resyn_runtime::{extract, ExtractError, ExtractMode, MAX_RESPONSE_BYTES};
use ExtractMode::{Auto, Fence, Json, Tag, Text};

/// (text, rule) of a successful extraction.
fn ex(s: &str, mode: ExtractMode) -> (&str, ExtractMode) {
    let e = extract(s, mode).unwrap_or_else(|e| panic!("{mode} on {s:?}: {e}"));
    (e.text, e.how)
}

fn auto(s: &str) -> (&str, ExtractMode) {
    ex(s, Auto)
}

fn not_found(s: &str, mode: ExtractMode) {
    assert_eq!(
        extract(s, mode),
        Err(ExtractError::NotFound { mode }),
        "{mode} on {s:?}"
    );
}

// ----- tag rule -------------------------------------------------------------------------

#[test]
fn tag_content_is_trimmed() {
    let s = "Let me think. 3 + 4 = 7.\n<answer>\n  [1, 2]\n</answer>\nDone.";
    assert_eq!(auto(s), ("[1, 2]", Tag));
    assert_eq!(ex(s, Tag), ("[1, 2]", Tag));
}

#[test]
fn tag_name_is_case_insensitive_and_may_have_spaces() {
    assert_eq!(auto("<ANSWER>42</Answer>"), ("42", Tag));
    assert_eq!(auto("<answer >42</answer\t>"), ("42", Tag));
    // Not answer tags: attributes, other names, a self-closing tag.
    not_found("<answer id=1>42</answer>", Tag);
    not_found("<answers>42</answers>", Tag);
    not_found("<answer/>", Tag);
    not_found("no tags here", Tag);
}

#[test]
fn last_tag_wins() {
    let s = "<answer>1</answer> hmm, no: <answer>2</answer> and later prose 9";
    assert_eq!(auto(s), ("2", Tag));
}

#[test]
fn unclosed_last_tag_takes_the_rest() {
    assert_eq!(
        auto("<answer>1</answer> wait <answer> 7, final\n"),
        ("7, final", Tag)
    );
    assert_eq!(auto("<answer>"), ("", Tag));
    // A stray closing tag before the last opening one does not close it.
    assert_eq!(auto("</answer> x <answer>5"), ("5", Tag));
    // Only the first closing tag after the last opening one counts.
    assert_eq!(auto("<answer>5</answer> b </answer>"), ("5", Tag));
    // A closing tag without any opening tag is not a tag answer.
    assert_eq!(auto("the answer is 5</answer>"), ("5", Json));
}

#[test]
fn empty_tag_is_an_empty_answer_not_a_fallback() {
    assert_eq!(auto("I computed 42. <answer></answer>"), ("", Tag));
    assert_eq!(auto("42 <answer>  \n </answer>"), ("", Tag));
}

#[test]
fn tag_wrapping_a_fence_is_unwrapped() {
    let s = "<answer>\n```json\n{\"a\": 1}\n```\n</answer>";
    assert_eq!(auto(s), ("{\"a\": 1}", Tag));
    // Content that merely contains a fence later is left alone.
    let s = "<answer>x ```y```</answer>";
    assert_eq!(auto(s), ("x ```y```", Tag));
}

#[test]
fn tag_has_priority_over_fence_and_json_wherever_it_is() {
    let s = "<answer>3</answer>\n```json\n[1]\n```\n[2] 5";
    assert_eq!(auto(s), ("3", Tag));
    let s = "```json\n[1]\n```\n[2] <answer>3</answer> [4]";
    assert_eq!(auto(s), ("3", Tag));
}

// ----- fence rule -----------------------------------------------------------------------

#[test]
fn fence_with_info_string() {
    let s = "Here:\n```json\n{\"moves\": [1, 2]}\n```\nThat's it.";
    assert_eq!(auto(s), ("{\"moves\": [1, 2]}", Fence));
    assert_eq!(ex(s, Fence), ("{\"moves\": [1, 2]}", Fence));
    assert_eq!(auto("```\n[1]\n```"), ("[1]", Fence));
    assert_eq!(auto("```c++\nint x;\n```"), ("int x;", Fence));
}

#[test]
fn inline_fence_and_content_on_the_opening_line() {
    assert_eq!(auto("so ```[1, 2]``` ok"), ("[1, 2]", Fence));
    // Not an info word: the content starts right after the backticks.
    assert_eq!(auto("```[1,\n2]\n```"), ("[1,\n2]", Fence));
}

#[test]
fn last_fence_wins_and_a_final_unclosed_fence_is_ignored() {
    let s = "```\n[1]\n```\ntext\n```json\n[2]\n```\nmore\n```python\nprint(3)";
    assert_eq!(auto(s), ("[2]", Fence));
    not_found("```json\n[1]\n", Fence);
    // Only an unclosed fence: the JSON rule applies to the text.
    assert_eq!(auto("```json\n[1]\n"), ("[1]", Json));
}

#[test]
fn longer_fences_contain_shorter_ones() {
    let s = "````markdown\n```json\n[1]\n```\n````";
    assert_eq!(auto(s), ("```json\n[1]\n```", Fence));
    // Runs of one or two backticks are inline code, not fences.
    assert_eq!(auto("`x` and ``y`` then 4"), ("4", Json));
}

#[test]
fn fence_has_priority_over_json() {
    let s = "[9]\n```\n[1]\n```\n[2] 3";
    assert_eq!(auto(s), ("[1]", Fence));
}

// ----- JSON rule ------------------------------------------------------------------------

#[test]
fn prose_with_numbers_takes_the_last_number() {
    assert_eq!(auto("I think 3, no wait, 42"), ("42", Json));
    assert_eq!(auto("So the answer is 42."), ("42", Json));
    assert_eq!(auto("It is -7 (negative)."), ("-7", Json));
    assert_eq!(auto("roughly 2.5e3 or 3.25!"), ("3.25", Json));
    assert_eq!(auto("The result is **17**"), ("17", Json));
    assert_eq!(auto("$\\boxed{12}$"), ("12", Json));
    assert_eq!(auto("10-3=7"), ("7", Json));
}

#[test]
fn scalar_tokens_need_word_boundaries() {
    // Words containing digits or literals are not tokens.
    assert_eq!(ex("x3 step_2 4th v1.2.3 untrue nullable 007", Auto).1, Text);
    not_found("x3 step_2 4th v1.2.3 untrue nullable 007", Json);
    assert_eq!(auto("it is true"), ("true", Json));
    assert_eq!(auto("false, or null?"), ("null", Json));
}

#[test]
fn quoted_strings_are_scalar_tokens() {
    assert_eq!(auto("The move is \"pour\"."), ("\"pour\"", Json));
    assert_eq!(auto(r#"say "a\"b" now"#), (r#""a\"b""#, Json));
    // A quote that does not close on its line is prose.
    assert_eq!(auto("He said \"hello\nand 5"), ("5", Json));
    // Invalid escapes make it prose too.
    assert_eq!(auto(r#"7 "\x" "#), ("7", Json));
}

#[test]
fn the_last_composite_beats_scalars() {
    assert_eq!(auto("[1, 2] so the answer is 3"), ("[1, 2]", Json));
    assert_eq!(
        auto("first {\"a\": 1} then [true, null]!"),
        ("[true, null]", Json)
    );
}

#[test]
fn brackets_inside_strings_do_not_confuse_the_scan() {
    let s = r#"Result: {"moves": ["]", "[{", "}"], "n": 2} -- done [x"#;
    assert_eq!(auto(s), (r#"{"moves": ["]", "[{", "}"], "n": 2}"#, Json));
    assert_eq!(
        auto(r#"pick ["a]b", "c\"]"] ok"#),
        (r#"["a]b", "c\"]"]"#, Json)
    );
}

#[test]
fn the_top_level_value_is_taken_not_an_inner_one() {
    assert_eq!(auto("x [[1, 2], [3]] y"), ("[[1, 2], [3]]", Json));
}

#[test]
fn invalid_bracketed_prose_is_skipped() {
    // A valid span inside invalid prose brackets is found.
    assert_eq!(auto("{answer: [1, 2, 3]}"), ("[1, 2, 3]", Json));
    // Prose brackets after the answer do not replace it.
    assert_eq!(auto("[1, 2] [citation needed]"), ("[1, 2]", Json));
    // An unclosed bracket earlier does not swallow the answer.
    assert_eq!(auto("Consider [a, b ... final: [3, 4]"), ("[3, 4]", Json));
    // Nor does an unclosed string inside brackets: strings end at line breaks.
    assert_eq!(auto("[he said \"hi] and\nthen [3, 4]"), ("[3, 4]", Json));
    // A mismatched closer abandons its span.
    assert_eq!(auto("{ x ] [5]"), ("[5]", Json));
    // Trailing commas, bare words, single quotes: not JSON.
    assert_eq!(auto("[1, 2,] ['a'] [x] 6"), ("6", Json));
}

#[test]
fn json_mode_applies_only_its_rule() {
    assert_eq!(ex("<answer>1</answer> [2]", Json), ("[2]", Json));
    not_found("no values here", Json);
    not_found("", Json);
}

// ----- text rule, modes, errors --------------------------------------------------------

#[test]
fn text_is_the_whole_trimmed_text() {
    assert_eq!(auto("  pour \n"), ("pour", Text));
    assert_eq!(
        ex(" <answer>1</answer> ", Text),
        ("<answer>1</answer>", Text)
    );
    not_found(" \n\t ", Text);
}

#[test]
fn empty_input() {
    for mode in [Auto, Tag, Fence, Json, Text] {
        not_found("", mode);
    }
    not_found("   \r\n", Auto);
}

#[test]
fn crlf_line_endings() {
    assert_eq!(auto("<answer>\r\n42\r\n</answer>\r\n"), ("42", Tag));
    assert_eq!(auto("```json\r\n[1, 2]\r\n```\r\n"), ("[1, 2]", Fence));
    assert_eq!(auto("see\r\n[1,\r\n 2]\r\n"), ("[1,\r\n 2]", Json));
    assert_eq!(auto("he said \"x\r\n 5\r\n"), ("5", Json));
}

#[test]
fn non_ascii_text() {
    assert_eq!(auto("答案是42"), ("42", Json));
    assert_eq!(auto("<answer>café</answer>"), ("café", Tag));
    assert_eq!(auto("→ [\"é\", \"日本\"] ←"), ("[\"é\", \"日本\"]", Json));
    assert_eq!(auto("  Ünïcödé ✓  "), ("Ünïcödé ✓", Text));
    assert_eq!(auto("```日本\nx\n```"), ("日本\nx", Fence));
    assert_eq!(auto("<answer>é"), ("é", Tag));
}

#[test]
fn modes_parse_and_print() {
    for mode in [Auto, Tag, Fence, Json, Text] {
        assert_eq!(mode.name().parse::<ExtractMode>(), Ok(mode));
    }
    assert!("xml".parse::<ExtractMode>().is_err());
}

#[test]
fn oversized_input_is_rejected_unread() {
    let big = "a".repeat(MAX_RESPONSE_BYTES + 1);
    for mode in [Auto, Tag, Fence, Json, Text] {
        assert_eq!(
            extract(&big, mode),
            Err(ExtractError::TooLarge {
                len: MAX_RESPONSE_BYTES + 1
            })
        );
    }
    let limit = format!("{}7", " ".repeat(MAX_RESPONSE_BYTES - 1));
    assert_eq!(auto(&limit), ("7", Json));
}

// ----- hostile inputs: all must return promptly, without panicking ----------------------

/// Deterministic pseudo-random bytes (xorshift), as lossy UTF-8.
fn garbage(n: usize, seed: u64, alphabet: Option<&[u8]>) -> String {
    let mut x = seed | 1;
    let bytes: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match alphabet {
                Some(a) => a[(x % a.len() as u64) as usize],
                None => (x >> 24) as u8,
            }
        })
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn all_modes(s: &str) {
    for mode in [Auto, Tag, Fence, Json, Text] {
        if let Ok(e) = extract(s, mode) {
            // Results are slices of the input.
            let (p, q) = (s.as_ptr() as usize, e.text.as_ptr() as usize);
            assert!(q >= p && q + e.text.len() <= p + s.len());
            assert_ne!(e.how, Auto);
        }
    }
}

#[test]
fn a_megabyte_of_garbage() {
    all_modes(&garbage(1 << 20, 7, None));
    all_modes(&garbage(
        1 << 20,
        8,
        Some(b"[]{}\"\\,:`<>/answer 0123456789.-e\n\r\t"),
    ));
    all_modes(&garbage(1 << 20, 9, Some(b"\"\\[ \n")));
}

#[test]
fn a_megabyte_of_each_special_character() {
    for unit in [
        "[",
        "{",
        "]",
        "\"",
        "\\",
        "`",
        "<",
        "<answer",
        "<answer>",
        "</answer>",
        "```\n",
        "[\"",
        "\"\\",
        "[1,",
        "1",
        "-",
        "é",
        "<answer ",
        "\n",
    ] {
        let s = unit.repeat((1 << 20) / unit.len());
        all_modes(&s);
    }
    let s = "[".repeat(1 << 20);
    not_found(&s, Json);
    assert_eq!(auto(&s).1, Text);
}

#[test]
fn deeply_nested_brackets() {
    let n = 100_000;
    let s = format!("{}{}", "[".repeat(n), "]".repeat(n));
    // Spans nested deeper than MAX_JSON_DEPTH are never extracted; the deepest complete
    // one that is not is (it would fail to decode anyway).
    let (text, how) = ex(&s, Json);
    assert_eq!(how, Json);
    assert_eq!(text.len(), 2 * MAX_JSON_DEPTH);
    // An answer after deep unclosed nesting is still found.
    let s = format!("{} final: [1, 2]", "[".repeat(n));
    assert_eq!(auto(&s), ("[1, 2]", Json));
    let s = format!("{}{}", "{\"a\":".repeat(n), "}".repeat(n));
    all_modes(&s);
}
