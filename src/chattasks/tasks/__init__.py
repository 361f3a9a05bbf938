"""The built-in tasks, one module each. Import a task from its module (``chattasks.tasks.arc``)."""
