"""The learner-facing course pages (home, modules, lessons, quizzes) and how they apply the
course admin's set-up of the session's LMS context (`setup.course_settings()`): module order
and offer, pass mark, quiz cooldown, languages and dates."""
