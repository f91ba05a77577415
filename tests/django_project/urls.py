from django.urls import path

from .shop import views

urlpatterns = [
    path("orders/", views.create_order),
    path("orders/<int:order_id>/report/", views.order_report),
    path("tasks/<str:task_id>/", views.task_result),
]
