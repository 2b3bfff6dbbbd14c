"""The pages of programs (list, detail, edit, delete, live, row, control, install, activity).

TODO: the shared page layer (processes/) fills these; until then the names do not resolve and
only the JSON API (programs/api_urls.py), the CLI and merge files reach programs.
"""

app_name = "programs"

urlpatterns: list = []
