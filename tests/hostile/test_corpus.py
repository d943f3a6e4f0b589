"""The hostile-input corpus holds its goal (issue 31): at least 200 cases across options, data files and
received run directories, each asserting its outcome class. A new hostile test must say which class its cases
are in here, so docs/reliability.md's outcome table can be counted, not guessed."""

from __future__ import annotations

import importlib
import math
from collections import Counter
from pathlib import Path

from .test_analyses import CASES as ANALYSIS_CASES
from .test_analyses import expected_outcome

HERE = Path(__file__).parent
GOAL = 200
MESSAGE, HANDLED = "one clear message (exit 2, no traceback)", "handled correctly (accepted, shown inert, or fast)"
#: the outcome every case of a test function asserts; test_analyses says per case
OUTCOME = {
    "test_a_command_line_text_that_is_not_utf8_is_one_message": MESSAGE,
    "test_a_csv_field_over_128_kib_is_read": HANDLED,
    "test_a_lone_surrogate_in_jsonl_is_one_message_naming_file_and_line": MESSAGE,
    "test_a_multi_mb_text_in_training_data_is_cut_with_a_warning_naming_its_line": HANDLED,
    "test_analyze_refuses_a_received_multi_mb_text_in_one_message": MESSAGE,
    "test_predict_cuts_a_multi_mb_argument_and_file_line": HANDLED,
    "test_100k_unique_ids_pass_in_seconds": HANDLED,
    "test_a_repeated_id_in_100k_rows_is_named_in_seconds": MESSAGE,
    "test_a_huge_word_span_is_clipped_to_its_text": HANDLED,
    "test_a_plain_web_link_survives_in_the_page": HANDLED,
    "test_a_received_best_epoch_is_refused_in_one_inert_message": MESSAGE,
    "test_a_received_label_reaches_report_html_inert": HANDLED,
    "test_a_received_label_reaches_the_terminal_report_inert": HANDLED,
    "test_a_received_label_stays_data_in_the_json_report": HANDLED,
    "test_a_run_directory_name_is_shown_literally": HANDLED,
    "test_an_error_naming_a_hostile_path_is_one_inert_message": MESSAGE,
    "test_an_outside_plugins_rich_section_is_inert_in_the_page_and_the_terminal": HANDLED,
    "test_predict_shows_hostile_texts_and_labels_inert": HANDLED,
    "test_received_mecab_options_are_refused_in_one_message": MESSAGE,
    "test_report_never_writes_through_a_symlinked_newest_run": HANDLED,
    "test_a_fifo_in_place_of_a_file_is_refused_not_waited_on": MESSAGE,
    "test_a_wrong_typed_value_is_one_message_naming_file_and_key": MESSAGE,
    "test_an_out_of_range_option_is_refused_at_parse_time": MESSAGE,
    "test_nan_in_a_received_file_is_refused": MESSAGE,
    "test_a_checkpoint_file_damaged_in_place_is_named_by_its_checksum": MESSAGE,
    "test_a_tampered_state_json_is_one_message_naming_the_key": MESSAGE,
    "test_remote_code_or_kernels_in_a_received_model_config_are_refused": MESSAGE,
    "test_a_local_attention_implementation_still_loads": HANDLED,
    "test_a_fifo_in_place_of_a_model_setting_file_is_refused_not_waited_on": MESSAGE,
    "test_a_damaged_prompt_setup_is_one_message_naming_file_and_key": MESSAGE,
    "test_a_damaged_demonstration_pool_is_one_message_naming_the_file": MESSAGE,
}
#: tests in tests/hostile that check a property, not a hostile input
NOT_CASES = {
    "test_the_planted_text_crashes_mecab_when_not_cut",  # the control that MeCab does crash, not a case
    "test_the_checksums_are_recorded_for_every_file",
    "test_the_corpus_holds_its_goal_with_every_case_classified",
}
ANALYSES = "test_a_damaged_analysis_is_one_message_naming_file_key_and_fix"


def collected() -> Counter[str]:
    """Test function -> cases, as pytest collects them: the product of its parametrize lists."""
    functions: Counter[str] = Counter()
    for path in sorted(HERE.glob("test_*.py")):
        module = importlib.import_module(f"{__package__}.{path.stem}")
        for name, item in vars(module).items():
            if name.startswith("test_") and callable(item):
                marks = [m for m in getattr(item, "pytestmark", []) if m.name == "parametrize"]
                functions[name] = math.prod(len(m.args[1]) for m in marks)
    return functions


def outcome_counts() -> Counter[str]:
    """Outcome class -> cases of the corpus."""
    functions = collected()
    unclassified = set(functions) - set(OUTCOME) - NOT_CASES - {ANALYSES}
    assert not unclassified, f"say in OUTCOME which class these cases are in: {sorted(unclassified)}"
    counts: Counter[str] = Counter()
    for function, n in functions.items():
        if function in OUTCOME:
            counts[OUTCOME[function]] += n
    assert functions[ANALYSES] == len(ANALYSIS_CASES)
    counts.update(MESSAGE if expected_outcome(*case) == "message" else HANDLED for case in ANALYSIS_CASES)
    return counts


def test_the_corpus_holds_its_goal_with_every_case_classified():
    counts = outcome_counts()
    assert sum(counts.values()) >= GOAL, counts
    assert set(counts) == {MESSAGE, HANDLED}
