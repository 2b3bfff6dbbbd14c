"""URLs of the programs' JSON API, under /api/programs/ (see programs/api.py)."""

from processes.definition_api import api_urls
from programs import api

app_name = "programs_api"

urlpatterns = api_urls(api.KIND)
