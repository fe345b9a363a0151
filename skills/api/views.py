"""REST endpoints of the skill library. Thin: validate input with a serializer, call skills.lifecycle."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import lifecycle
from ..models import Skill, SkillStateError
from ..views import filter_skills
from .serializers import ReviewSerializer, SkillDetailSerializer, SkillFilterSerializer, SkillSummarySerializer


class SkillPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


@extend_schema(parameters=[SkillFilterSerializer])
class SkillListView(generics.ListAPIView):
    """Skills, newest version first per name, filtered by status, kind, embodiment and text."""

    serializer_class = SkillSummarySerializer
    pagination_class = SkillPagination

    def get_queryset(self):
        filters = SkillFilterSerializer(data=self.request.query_params)
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        return filter_skills(Skill.objects.all(), **filters.validated_data).order_by("name", "-version")


class SkillDetailView(generics.RetrieveAPIView):
    """One skill with its failure signature, sketch, admission evidence and versions."""

    serializer_class = SkillDetailSerializer
    queryset = Skill.objects.prefetch_related("validations__run", "source_episodes")


class _ReviewView(APIView):
    permission_classes = [IsAdminUser]
    verb = None

    @extend_schema(
        request=ReviewSerializer,
        responses={
            200: SkillDetailSerializer,
            400: OpenApiResponse(description="bad input"),
            403: OpenApiResponse(description="staff only"),
            404: OpenApiResponse(description="no such skill"),
            409: OpenApiResponse(description="the skill's status does not allow it (or it has no kind to approve)"),
        },
    )
    def post(self, request, pk):
        skill = generics.get_object_or_404(Skill, pk=pk)
        body = ReviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            type(self).verb(skill, user=request.user, note=body.validated_data["note"])
        except SkillStateError as exc:
            return Response({"detail": str(exc), "status": skill.status}, status=status.HTTP_409_CONFLICT)
        return Response(SkillDetailSerializer(skill, context={"request": request}).data)


class SkillApproveView(_ReviewView):
    """Approve a validated skill (staff); the previously approved version of the same name is retired."""

    verb = lifecycle.approve_skill


class SkillRejectView(_ReviewView):
    """Reject a proposed or validated skill (staff)."""

    verb = lifecycle.reject_skill
