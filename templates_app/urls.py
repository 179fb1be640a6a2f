from django.urls import path

from templates_app import apis

urlpatterns = [
    path("templates", apis.TemplateListApi.as_view()),
    # Before the <template_id> routes. "validate" is also refused as a template name.
    path("templates/validate", apis.TemplateValidateApi.as_view()),
    path("templates/<str:template_id>", apis.TemplateDetailApi.as_view()),
    path("templates/<str:template_id>/versions", apis.TemplateVersionListApi.as_view()),
    path("templates/<str:template_id>/render", apis.TemplateRenderApi.as_view()),
]
