"""State: SQLAlchemy tables, repositories, migrations, secrets at rest."""
