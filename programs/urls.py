"""The pages of programs: the ones every kind has (processes/definition_views.py)."""

from processes.definition_views import DefinitionViews, definition_urls
from programs.forms import ProgramForm

app_name = "programs"

urlpatterns = definition_urls(DefinitionViews("program", ProgramForm))
