"""The learner-facing course pages (home, modules, deep-link picker)."""
