"""From a memory to the questions it answers and the key content an answer must hold."""

from collections import Counter

from together_llm.learn.questions import (
    holds,
    key_content,
    question_problem,
    second_person,
    template_questions,
)
from together_llm.learn.teacher import memory_questions

DOG = "My dog is called Rex and she is a beagle."


def test_a_memory_is_said_back_to_the_person():
    assert second_person(DOG) == "Your dog is called Rex and she is a beagle."
    assert second_person("I was born in Hallstatt.") == "You were born in Hallstatt."
    assert (
        second_person("I'm a nurse and my mum likes me.")
        == "You're a nurse and your mum likes you."
    )


def test_patterns_ask_what_a_person_would_ask():
    assert "What is my dog called?" in template_questions(DOG)
    assert "Tell me about my dog." in template_questions(DOG)
    assert "Where was I born?" in template_questions("I was born in Hallstatt, Austria.")
    assert "What is my job?" in template_questions("I work as a glassblower.")
    assert "Who is my sister?" in template_questions("My sister Ada lives in Oslo.")
    assert "What do I drive?" in template_questions("I drive a green Volvo.")
    # a statement in no known shape still gets a question, about its words
    assert template_questions("Rex likes carrots.")


def test_an_answer_holds_the_memory_only_with_its_name():
    keys = key_content(DOG, "What is my dog called?")
    assert keys == ["Rex", "beagle"]
    assert holds("Your dog is called Rex.", keys)
    assert not holds("Your dog is called Max, a beagle.", keys)  # the name is what matters
    assert not holds("I do not know your dog.", keys)


def test_a_teachers_question_that_cannot_teach_the_memory_is_dropped():
    assert question_problem("What is my dog's name?", DOG, []) is None
    assert question_problem("What do you call your dog?", DOG, []) is not None  # the assistant's
    assert question_problem("Who is my brother?", DOG, []) is not None  # another topic
    assert question_problem("Which breed is Rex?", DOG, []) is not None  # gives it away
    assert question_problem("what is my dog's name", DOG, []) is not None  # not a question
    assert question_problem("What is my dog's name?", DOG, ["What is my dog's name?"])


def test_teacher_questions_are_kept_only_when_the_teachers_answer_holds_the_memory():
    asked = Counter()

    def teacher(prompt: str, seed):
        asked["questions" if seed is not None else "answers"] += 1
        if seed is not None:
            return " What is my dog's name?\n- What do you call your dog?\n- What does my dog look like?"
        if "look like" in prompt.rsplit("Question:", 1)[1]:
            return " Your dog is fluffy."  # the memory does not answer it
        return " Your dog is called Rex."

    questions, dropped = memory_questions(DOG, teacher, "teacher")
    from_teacher = [q for q, source in questions if source == "teacher"]
    assert from_teacher == ["What is my dog's name?"]
    assert dropped["its answer does not hold the memory"] == 2  # "look like", at both seeds
    assert dropped["asks about the assistant, not the person"] == 2
    assert dropped["a duplicate"] == 1  # the second seed's "What is my dog's name?"
    assert asked["questions"] == 2
