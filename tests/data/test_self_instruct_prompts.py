"""Self-Instruct's prompt parsers: what a teacher's continuation becomes."""

from together_llm.data.generate import prompts


def test_parse_instructions_from_a_continued_list():
    text = " Write a limerick.\nTask 10: Name two rivers in Asia.\nTask 11 : List the"
    assert prompts.parse_instructions(text, truncated=True) == [
        "Write a limerick.",
        "Name two rivers in Asia.",
    ]
    assert prompts.parse_instructions(text, truncated=False)[-1] == "List the"
    # a blank line ends the list, so what follows is ignored and nothing was cut
    assert prompts.parse_instructions("Name a fruit.\n\nSome chatter", truncated=True) == [
        "Name a fruit."
    ]
    assert prompts.instruction_prompt(["A b c.", "D e f."]).endswith(
        "Task 1: A b c.\nTask 2: D e f.\nTask 3:"
    )


def test_parse_instances_input_first_and_output_first():
    assert prompts.parse_input_first("Input: 3 and 4\nOutput: 7") == [
        {"input": "3 and 4", "output": "7"}
    ]
    assert prompts.parse_input_first("Input: None\nOutput: Hi!") == [{"input": "", "output": "Hi!"}]
    assert prompts.parse_input_first("Output: A tip.") == [{"input": "", "output": "A tip."}]
    assert prompts.parse_input_first("Just an answer.") == [
        {"input": "", "output": "Just an answer."}
    ]
    # a second "Input:" line starts a second example; a stray second output is cut off
    assert prompts.parse_input_first("Input: 2+2\nOutput: 4\nInput: 3+3\nOutput: 6\nOutput: 7") == [
        {"input": "2+2", "output": "4"},
        {"input": "3+3", "output": "6"},
    ]
    text = " Positive\nInput: I loved it.\nClass label: Negative.\nInput: Dull and long."
    assert prompts.parse_output_first(text) == [
        {"input": "I loved it.", "output": "Positive"},
        {"input": "Dull and long.", "output": "Negative"},
    ]
    assert prompts.parse_is_classification(" label") and not prompts.parse_is_classification(
        " text"
    )
    row = prompts.chat_row({"instruction": "Add the numbers."}, {"input": "3 and 4", "output": "7"})
    assert row["messages"] == [
        {"role": "user", "content": "Add the numbers.\n\n3 and 4"},
        {"role": "assistant", "content": "7"},
    ]


# --- the work folder ---------------------------------------------------------------------
