"""Template API: CRUD, versions, preview render and validation (DESIGN section 5)."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import errors
from config.api.pagination import paginate
from config.api.schema import PAGINATION_PARAMETERS, list_of, raises
from templates_app import rendering, selectors, services

TAGS = ["templates"]
READ_SCOPES = ("emails:read", "templates:write")
WRITE_SCOPES = ("templates:write",)
# Three bodies of up to 512 KB each, JSON-escaped.
TEMPLATE_BODY_BYTES = 4 * 1024 * 1024

CREATE_EXAMPLES = [OpenApiExample("Welcome template", request_only=True, value={
    "name": "welcome", "subject": "Welcome to {{company}}, {{user_name}}!",
    "html": "<h1>Welcome to {{company}}, {{user_name}}!</h1>", "text": "Welcome to {{company}}, {{user_name}}!"})]
RENDER_EXAMPLES = [
    OpenApiExample("Variables", request_only=True, value={"variables": {"company": "Acme", "user_name": "Ada"}}),
    OpenApiExample("Rendered", response_only=True, value={
        "template_id": "tpl_8Hq2Zk4mWc7RtYb1Nf5pLs3x", "template_version": 1, "subject": "Welcome to Acme, Ada!",
        "html": "<h1>Welcome to Acme, Ada!</h1>", "text": "Welcome to Acme, Ada!"}),
]


TEMPLATE_REF = OpenApiParameter(
    "template_id", str, OpenApiParameter.PATH,
    description="The template's id (`tpl_...`) or its name.",
)

_SUBJECT_HELP = (f"Jinja2 template of the subject, up to {rendering.MAX_SUBJECT_SOURCE_CHARS} characters; "
                 "rendered on one line.")
_BODY_HELP = (f"Jinja2 template, up to {rendering.MAX_BODY_SOURCE_BYTES // 1024} KB. "
              "`html` is autoescaped, `text` is not.")


class TemplateSummaryOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    name = serializers.CharField()
    subject = serializers.CharField(source="current_version.subject")
    version = serializers.IntegerField(source="current_version.number")
    variables = serializers.ListField(child=serializers.CharField(), source="current_version.variables")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class TemplateOutput(TemplateSummaryOutput):
    html = serializers.CharField(source="current_version.html", allow_null=True)
    text = serializers.CharField(source="current_version.text", allow_null=True)


class TemplateVersionOutput(serializers.Serializer):
    version = serializers.IntegerField(source="number")
    subject = serializers.CharField()
    html = serializers.CharField(allow_null=True)
    text = serializers.CharField(allow_null=True)
    variables = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()


class TemplateProblemOutput(serializers.Serializer):
    field = serializers.ChoiceField(choices=rendering.FIELDS)
    line = serializers.IntegerField(allow_null=True, help_text="1-based line in that field, when known.")
    message = serializers.CharField()


class TemplateListApi(APIView):
    required_scopes = {"GET": READ_SCOPES, "POST": WRITE_SCOPES}
    max_body_bytes = TEMPLATE_BODY_BYTES

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100, help_text="Unique in the sub-account; usable as `template_id`.")
        subject = serializers.CharField(max_length=rendering.MAX_SUBJECT_SOURCE_CHARS, help_text=_SUBJECT_HELP)
        html = serializers.CharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False,
                                     help_text=_BODY_HELP)
        text = serializers.CharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False,
                                     help_text=_BODY_HELP)

    @extend_schema(operation_id="templates_list", summary="List templates", tags=TAGS,
                   parameters=PAGINATION_PARAMETERS, responses=list_of("templates", TemplateSummaryOutput))
    def get(self, request):
        return Response(paginate(request, selectors.template_list(subaccount=request.subaccount),
                                 key="templates", serializer_class=TemplateSummaryOutput))

    @raises(errors.Conflict)
    @extend_schema(operation_id="templates_create", examples=CREATE_EXAMPLES, summary="Create a template (version 1)", tags=TAGS,
                   request=Input, responses={201: TemplateOutput})
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.template_create(subaccount=request.subaccount, **data.validated_data)
        return Response(TemplateOutput(template).data, status=status.HTTP_201_CREATED)


class TemplateDetailApi(APIView):
    required_scopes = {"GET": READ_SCOPES, "PATCH": WRITE_SCOPES, "DELETE": WRITE_SCOPES}
    max_body_bytes = TEMPLATE_BODY_BYTES

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100, required=False)
        subject = serializers.CharField(max_length=rendering.MAX_SUBJECT_SOURCE_CHARS, required=False,
                                        help_text=_SUBJECT_HELP)
        html = serializers.CharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False,
                                     help_text=_BODY_HELP + " `null` removes it.")
        text = serializers.CharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False,
                                     help_text=_BODY_HELP + " `null` removes it.")

    @extend_schema(operation_id="templates_get", summary="Get a template (current version)", tags=TAGS,
                   parameters=[TEMPLATE_REF], responses=TemplateOutput)
    def get(self, request, template_id: str):
        template = selectors.template_get(subaccount=request.subaccount, template_ref=template_id)
        return Response(TemplateOutput(template).data)

    @raises(errors.Conflict)
    @extend_schema(operation_id="templates_update",
                   summary="Update a template; a content change stores a new version", tags=TAGS,
                   parameters=[TEMPLATE_REF], request=Input, responses=TemplateOutput)
    def patch(self, request, template_id: str):
        template = selectors.template_get(subaccount=request.subaccount, template_ref=template_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.template_update(template=template, **data.validated_data)
        return Response(TemplateOutput(template).data)

    @extend_schema(operation_id="templates_delete",
                   summary="Delete a template (emails sent with it keep their template id and version)",
                   tags=TAGS, parameters=[TEMPLATE_REF], responses={204: None})
    def delete(self, request, template_id: str):
        template = selectors.template_get(subaccount=request.subaccount, template_ref=template_id)
        services.template_delete(template=template)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TemplateVersionListApi(APIView):
    required_scopes = {"GET": READ_SCOPES}

    @extend_schema(operation_id="templates_versions", summary="List a template's versions, newest first",
                   tags=TAGS, parameters=[TEMPLATE_REF, *PAGINATION_PARAMETERS],
                   responses=list_of("versions", TemplateVersionOutput))
    def get(self, request, template_id: str):
        template = selectors.template_get(subaccount=request.subaccount, template_ref=template_id)
        return Response(paginate(request, selectors.template_version_list(template=template),
                                 key="versions", serializer_class=TemplateVersionOutput))


class TemplateRenderApi(APIView):
    required_scopes = {"POST": READ_SCOPES}

    class Input(serializers.Serializer):
        variables = serializers.DictField(required=False, default=dict,
                                          help_text="Values for the template's variables (JSON object).")
        version = serializers.IntegerField(required=False, min_value=1,
                                           help_text="Render this version instead of the current one.")

    class Output(serializers.Serializer):
        template_id = serializers.CharField()
        template_version = serializers.IntegerField()
        subject = serializers.CharField()
        html = serializers.CharField(allow_null=True)
        text = serializers.CharField(allow_null=True)

    @raises(errors.InvalidVariables)
    @extend_schema(operation_id="templates_render", examples=RENDER_EXAMPLES,
                   summary="Render a template with variables (preview; nothing is sent)", tags=TAGS,
                   parameters=[TEMPLATE_REF], request=Input, responses=Output)
    def post(self, request, template_id: str):
        template = selectors.template_get(subaccount=request.subaccount, template_ref=template_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        rendered = services.template_render(template=template, **data.validated_data)
        return Response(self.Output(rendered).data)


class TemplateValidateApi(APIView):
    required_scopes = {"POST": READ_SCOPES}
    max_body_bytes = TEMPLATE_BODY_BYTES

    class Input(serializers.Serializer):
        subject = serializers.CharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False)
        html = serializers.CharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False)
        text = serializers.CharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False)

        def validate(self, attrs):
            if not any(attrs.get(field) is not None for field in rendering.FIELDS):
                raise serializers.ValidationError("Give at least one of subject, html, text.")
            return attrs

    class Output(serializers.Serializer):
        valid = serializers.BooleanField()
        errors = TemplateProblemOutput(many=True)
        variables = serializers.ListField(child=serializers.CharField(),
                                          help_text="Every variable the template reads.")
        required_variables = serializers.ListField(
            child=serializers.CharField(),
            help_text="Variables a render fails without (not guarded by `is defined` or `|default`).")

    @extend_schema(operation_id="templates_validate",
                   summary="Check unsaved template sources: syntax errors with line numbers, variables used",
                   tags=TAGS, request=Input, responses=Output)
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        check = rendering.validate_sources(**data.validated_data)
        return Response(self.Output({
            "valid": check.valid,
            "errors": check.errors,
            "variables": check.variables,
            "required_variables": check.required_variables,
        }).data)
