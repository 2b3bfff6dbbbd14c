"""The pages of gateways: the ones every kind has (processes/definition_views.py)."""

from gateways.forms import GatewayForm
from processes.definition_views import DefinitionViews, definition_urls

app_name = "gateways"

urlpatterns = definition_urls(DefinitionViews("gateway", GatewayForm))
