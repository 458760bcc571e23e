"""Assessment: quizzes, verified coding exercises, grading."""
