from processes.definition_views import DefinitionViews, definition_urls
from processes.tests.echo.forms import EchoForm

app_name = "echo"

urlpatterns = definition_urls(DefinitionViews("echo", EchoForm))
