"""The prompt templates Lectern ships: one per LLM call the services make, by name.

These are the defaults: :class:`~shared.llm.prompts.DefaultPrompts` renders them, and
the prompt registry seeds from them and falls back to them. The services compute the
variables (``services/<name>/prompts.py``); the instructions live here, as data a
prompt engineer edits.

User messages that describe the work are ``key: value`` lines (a brief), which a real
model reads as such and the offline model parses: keep their keys when editing. Text
is ``str.format`` syntax: ``{name}`` is a variable, ``{{`` a literal brace.

Cheap to import (no litellm) and independent of the services.
"""

from __future__ import annotations

from shared.llm.templates import (
    ModelConfig,
    NamedTemplate,
    Role,
    TemplateMessage,
    Variable,
    VariableType,
)

Var = tuple[VariableType, str]  # (type, description)


def _template(
    name: str,
    task: str,
    description: str,
    messages: list[tuple[Role, str]],
    variables: dict[str, Var],
    response_schema: str | None = None,
) -> NamedTemplate:
    """A template from ``(role, content)`` pairs and ``{name: (type, description)}``."""
    return NamedTemplate(
        name=name,
        task=task,
        description=description,
        messages=[TemplateMessage(role=role, content=content) for role, content in messages],
        variables={
            key: Variable(type=kind, description=text) for key, (kind, text) in variables.items()
        },
        model=ModelConfig(response_schema=response_schema),
    )


def _placeholder(variable: str) -> tuple[Role, str]:
    """A message standing for the messages held by the ``messages`` variable ``variable``."""
    return ("placeholder", variable)


# ----------------------------------------------------------------------------- planner

_PROFILE: Var = (
    "string",
    "The learner profile as key: value lines (topic, level, duration_hours, expectations, "
    "style, pace, goal_context, language).",
)
_SOURCES: Var = (
    "string",
    "The retrieved passages, each '[S<n>] file, page — section' then its text, separated "
    "by blank lines.",
)

_LANGUAGE: Var = ("string", "The learner's language, e.g. en or de.")
_DURATION: Var = ("string", "Hours the course should take, as the learner gave them (e.g. 10.0).")

_WELCOME_SYSTEM = """You are Lectern, an expert instructional designer.
Propose a personalised course plan for the learner described by the user.
Write in the learner's language ({language}). Use markdown: a title, two or three
sentences on how the course fits the learner, then "## Modules": a numbered list where
each module has a **bold title**, one sentence on what it covers, and its hours.
Fit the modules into {duration_hours} hours at a {pace} pace, for a {level} learner who
prefers {style} learning. End with one question inviting the learner to refine the plan."""

_REFINE_SYSTEM = """You are Lectern, an expert instructional designer, in a planning chat
with a learner. The first user message is the learner's profile; then comes the
conversation so far (older turns may be given as a summary) and the latest plan.
Answer the learner's newest message with the complete, updated plan in the same
markdown shape: a title, a short fit paragraph, "## Modules" as a numbered list where
each module has a **bold title**, one sentence and its hours, then "## Changes" listing
what you changed and why. Keep the total near {duration_hours} hours unless the learner
asks otherwise. Write in the learner's language ({language})."""

_SUMMARISE_SYSTEM = """Summarise this course-planning conversation for the designer who
continues it. Keep every request and decision of the learner (what to add, drop,
shorten, emphasise) and any constraint they gave; drop pleasantries and the plans
themselves (the latest plan is kept separately). Use at most 12 short bullet points."""

_FINALISE_SYSTEM = """You turn an agreed course plan into structured modules.
Use the latest plan (the assistant message) and the learner profile: one module per
module of the plan, in order, each with a title, a one-paragraph description, two to
five concrete learning objectives (verbs a learner can be checked on) and estimated
hours. Keep the plan's titles. Optionally give the course a short title."""

_PLAN_GROUNDING = """
The learner has given their own course materials: a user message lists passages from them
after "=== SOURCES ===", each with a marker such as [S1]. Build the modules around what
these materials cover, in their order where it makes sense, and end each module's sentence
with the markers of the passages it draws on. Cite only the markers given; a module the
materials do not cover gets no marker."""

_PLANNER = [
    _template(
        "planner.grounded_welcome_plan",
        "grounded_welcome_plan",
        "The first course plan, built from passages of the learner's own sources.",
        [
            ("system", _WELCOME_SYSTEM + "\n" + _PLAN_GROUNDING),
            ("user", "{profile}\n=== SOURCES ===\n{sources}"),
        ],
        {
            "language": _LANGUAGE,
            "duration_hours": _DURATION,
            "pace": ("string", "intensive, moderate or relaxed."),
            "level": ("string", "beginner, intermediate or advanced."),
            "style": ("string", "theory, practice or mixed."),
            "profile": _PROFILE,
            "sources": _SOURCES,
        },
    ),
    _template(
        "planner.grounded_refine_plan",
        "grounded_refine_plan",
        "The updated plan in the planning chat, built from passages of the learner's sources.",
        [
            ("system", _REFINE_SYSTEM + "\n" + _PLAN_GROUNDING),
            ("user", "{profile}"),
            _placeholder("summary"),
            _placeholder("history"),
            ("user", "Passages from my course materials:\n=== SOURCES ===\n{sources}"),
            ("user", "{request}"),
        ],
        {
            "duration_hours": _DURATION,
            "language": _LANGUAGE,
            "profile": _PROFILE,
            "summary": (
                "messages",
                "Empty, or one user message: 'Summary of the earlier conversation:' and the "
                "summary of the turns older than the history.",
            ),
            "history": (
                "messages",
                "The recent turns of the chat verbatim, oldest first (the latest plan among them).",
            ),
            "request": ("string", "The learner's newest message."),
            "sources": _SOURCES,
        },
    ),
    _template(
        "planner.welcome_plan",
        "welcome_plan",
        "The first course plan for a new learner profile (markdown, streamed to the learner).",
        [("system", _WELCOME_SYSTEM), ("user", "{profile}")],
        {
            "language": _LANGUAGE,
            "duration_hours": _DURATION,
            "pace": ("string", "intensive, moderate or relaxed."),
            "level": ("string", "beginner, intermediate or advanced."),
            "style": ("string", "theory, practice or mixed."),
            "profile": _PROFILE,
        },
    ),
    _template(
        "planner.refine_plan",
        "refine_plan",
        "The updated plan answering the learner's message in the planning chat.",
        [
            ("system", _REFINE_SYSTEM),
            ("user", "{profile}"),
            _placeholder("summary"),
            _placeholder("history"),
            ("user", "{request}"),
        ],
        {
            "duration_hours": _DURATION,
            "language": _LANGUAGE,
            "profile": _PROFILE,
            "summary": (
                "messages",
                "Empty, or one user message: 'Summary of the earlier conversation:' and the "
                "summary of the turns older than the history.",
            ),
            "history": (
                "messages",
                "The recent turns of the chat verbatim, oldest first (the latest plan among them).",
            ),
            "request": ("string", "The learner's newest message."),
        },
    ),
    _template(
        "planner.summarise_chat",
        "summarise_chat",
        "Folds older turns of a long planning chat into its rolling summary.",
        [
            ("system", _SUMMARISE_SYSTEM),
            ("user", "{summary}Conversation to add:\n{conversation}"),
        ],
        {
            "summary": (
                "string",
                "Empty for the first summary; else 'Summary so far:', the previous summary and "
                "a blank line.",
            ),
            "conversation": ("string", "The turns to add, one 'role: content' line each."),
        },
    ),
    _template(
        "planner.finalise_modules",
        "finalise_modules",
        "The agreed plan as structured modules (JSON; the client appends the schema).",
        [
            ("system", _FINALISE_SYSTEM),
            ("user", "{profile}"),
            ("assistant", "{plan}"),
            ("user", "Turn the plan above into the course's modules."),
        ],
        {"profile": _PROFILE, "plan": ("string", "The latest plan, as markdown.")},
        response_schema="CourseDraft",
    ),
]

# ----------------------------------------------------------------------------- content

_FORMAT_RULES = """Format: markdown only, no preamble.
- Start with "# <lesson title>", then "## Overview" (how this lesson serves the learner's goal)
  and "## Learning objectives" (the module's objectives as a list).
- Teach in content blocks: one "## " section per idea, short paragraphs, concrete examples.
- Where the topic involves code, include worked code examples in fenced code blocks that
  name their language, each small enough to run and followed by what it shows.
- Where you explain a structure or a process, include at least one mermaid diagram in a
  ```mermaid fence (flowchart, sequence or class diagram); keep node labels short, without
  brackets or quotes.
- End with "## Summary" and then "## Knowledge check": 3 to 5 numbered questions, each
  followed on the next line by its answer as "*Answer:* ..."."""

# Only the learner's choices among fixed options reach a system prompt; their own words
# (topic, expectations, messages, feedback, answers) are data in the user messages.
_LEARNER = """The learner:
- level: {level}
- learning {goal}
- prefers {style}
- pace: {pace}
"""

_WRITE_SYSTEM = (
    """You are Lectern, an expert teacher writing one lesson of a personalised course.
Write the lesson for the module the user describes, in the learner's language ({language}).
"""
    + _LEARNER
    + """Aim for about {hours} hours of study. Stay within this module: the course outline
shows what the other modules cover, so build on earlier ones and do not pre-empt later ones.

"""
    + _FORMAT_RULES
)

_REVISE_SYSTEM = (
    """You are Lectern, an expert teacher revising a lesson of a personalised course.
The user described the module, you wrote the lesson (your previous answer), and the learner
has now given feedback (the last message). Rewrite the whole lesson so that it answers the
feedback, keeping what already works. Write in the learner's language ({language}).
"""
    + _LEARNER
    + "\n"
    + _FORMAT_RULES
    + """
After the knowledge check add "## Revision notes": a short list of what changed and why."""
)

_GROUNDING = """
The user message ends with passages from the author's own course materials, after the line
"=== SOURCES ===", each introduced by a marker such as [S1] and where it comes from. Teach
from these passages: every sentence that states what a passage says ends with that passage's
marker, e.g. "The loop runs one task at a time [S2]." Cite only the markers given, and only
for what the passage actually says. Anything you add that the passages do not support goes
in a section "## Beyond your sources", without markers."""

_LEARNER_VARIABLES: dict[str, Var] = {
    "language": _LANGUAGE,
    "level": ("string", "beginner, intermediate or advanced."),
    "goal": ("string", "Why the learner learns, as a phrase ('for work: tie ideas to ...')."),
    "style": ("string", "What the learner prefers, as a phrase ('hands-on examples ...')."),
    "pace": ("string", "How fast to go, as a phrase ('steady: one idea at a time ...')."),
}
_BRIEF: Var = (
    "string",
    "The module as key: value lines (title, course_topic, course_title, module_order, "
    "description, learning_objectives, estimated_hours, the learner's profile with their "
    "expectations, then the course outline).",
)

_CONTENT = [
    _template(
        "content.write_grounded_lesson",
        "write_grounded_lesson",
        "One lesson written from passages of the course's own sources, citing them as [S<n>].",
        [
            ("system", _WRITE_SYSTEM + "\n" + _GROUNDING),
            ("user", "{brief}\n=== SOURCES ===\n{sources}"),
        ],
        {
            **_LEARNER_VARIABLES,
            "hours": ("number", "The module's estimated hours of study."),
            "brief": _BRIEF,
            "sources": _SOURCES,
        },
    ),
    _template(
        "content.write_lesson",
        "write_lesson",
        "One lesson of a course, for one module (markdown, streamed to the learner).",
        [("system", _WRITE_SYSTEM), ("user", "{brief}")],
        {
            **_LEARNER_VARIABLES,
            "hours": ("number", "The module's estimated hours of study."),
            "brief": _BRIEF,
        },
    ),
    _template(
        "content.revise_lesson",
        "revise_lesson",
        "A lesson rewritten from the learner's feedback (markdown, streamed to the learner).",
        [
            ("system", _REVISE_SYSTEM),
            ("user", "{brief}"),
            ("assistant", "{lesson}"),
            # the feedback alone: the model (and the offline one's revision notes) quote it
            ("user", "{feedback}"),
        ],
        {
            **_LEARNER_VARIABLES,
            "brief": _BRIEF,
            "lesson": ("string", "The current version of the lesson, as markdown."),
            "feedback": ("string", "The learner's feedback, verbatim."),
        },
    ),
]

# -------------------------------------------------------------------------- assessment

_QUIZ_SYSTEM = """You are Lectern, an expert teacher writing the quiz for one lesson of a
personalised course. Write in the learner's language ({language}) for a {level} learner.
Ask only about what the lesson teaches.
- multiple_choice: 3 to 5 questions, each with 4 options of which exactly one is correct;
  every option has an explanation of why it is right or wrong.
- open_questions: 1 or 2 short questions that need a sentence or two, each with a model
  answer and a rubric (2 to 4 criteria a good answer meets)."""

_EXERCISE_SYSTEM = """You are Lectern, an expert teacher writing a Python coding exercise
that practises one lesson of a personalised course, for a {level} learner; write the text in
the learner's language ({language}) and the code in Python 3.11 with the standard library only.
Difficulty: {difficulty}.
- statement: the task in markdown, naming the function(s) to write and their behaviour.
- starter_code: the signature(s) with docstrings and a body that raises NotImplementedError.
- reference_solution: a complete, correct solution.
- visible_tests and hidden_tests: Python source with top-level `def test_...():` functions
  using plain `assert`; they call the solution's functions by name (no imports of the
  solution needed). Hidden tests cover edge cases. Test names differ between the suites.
- hints: 1 to 3 hints that guide without giving the solution away.
The reference solution must pass every test and the starter code must fail at least one."""

_GRADE_SYSTEM = """You are Lectern, a fair and encouraging examiner. Grade the learner's answer
to an open question against the model answer and the rubric. Score from 0 (wrong or missing)
to 1 (meets every criterion); partial answers get partial credit. Feedback: one to three
sentences in the learner's language ({language}), saying what was good and what was missing."""

# the brief, then the lesson verbatim after a "=== ... ===" line (where the brief ends)
_LESSON_MATERIAL = "{brief}\n=== LESSON ===\n{lesson}"
_LESSON_VARIABLES: dict[str, Var] = {
    "language": _LANGUAGE,
    "level": ("string", "beginner, intermediate or advanced."),
    "lesson": ("string", "The lesson, as markdown."),
}

_ASSESSMENT = [
    _template(
        "assessment.quiz",
        "quiz",
        "The quiz of a lesson: multiple-choice and open questions with their answer keys.",
        [("system", _QUIZ_SYSTEM), ("user", _LESSON_MATERIAL)],
        {
            **_LESSON_VARIABLES,
            "brief": (
                "string",
                "The lesson as key: value lines (title, lesson_order, course_topic, level, "
                "language).",
            ),
        },
        response_schema="QuizDraft",
    ),
    _template(
        "assessment.coding_exercise",
        "coding_exercise",
        "A Python coding exercise for a lesson, verified in the sandbox afterwards.",
        [
            ("system", _EXERCISE_SYSTEM),
            ("user", _LESSON_MATERIAL),
            _placeholder("verification"),
        ],
        {
            **_LESSON_VARIABLES,
            "difficulty": ("string", "How hard, as a phrase ('standard for this lesson')."),
            "brief": (
                "string",
                "The lesson as key: value lines (title, lesson_order, course_topic, level, "
                "language, difficulty).",
            ),
            "verification": (
                "messages",
                "Empty on the first try; after a draft failed in the sandbox, one user message "
                "saying why and asking for a new exercise.",
            ),
        },
        response_schema="ExerciseDraft",
    ),
    _template(
        "assessment.grade_answer",
        "grade_answer",
        "The score and feedback of a learner's answer to an open quiz question.",
        [
            ("system", _GRADE_SYSTEM),
            (
                "user",
                "question: {question}\nreference_answer: {reference_answer}\n"
                "rubric: {rubric}\nanswer: {answer}",
            ),
        ],
        {
            "language": _LANGUAGE,
            "question": ("string", "The open question, on one line."),
            "reference_answer": ("string", "The quiz's model answer, on one line."),
            "rubric": ("string", "The criteria a good answer meets, separated by '; '."),
            "answer": ("string", "The learner's answer, on one line."),
        },
        response_schema="GradeDraft",
    ),
]


def _index(templates: list[NamedTemplate]) -> dict[str, NamedTemplate]:
    index: dict[str, NamedTemplate] = {}
    for template in templates:
        if template.name in index:
            raise ValueError(f"two shipped templates are named {template.name!r}")
        index[template.name] = template
    return index


LIBRARY: dict[str, NamedTemplate] = _index([*_PLANNER, *_CONTENT, *_ASSESSMENT])

__all__ = ["LIBRARY"]
