"""URLs of the JSON API, under /api/ (see gateways/api.py): every kind's (processes/definition_api.py),
under the names they always had."""

from gateways import api
from processes.definition_api import api_urls

app_name = "api"

urlpatterns = api_urls(api.KIND, names=("gateways", "gateway", "action"))
