"""Who launched and from where: instructors, LMS contexts, resource links, memberships."""
