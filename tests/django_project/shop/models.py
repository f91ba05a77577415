from django.db import models


class Order(models.Model):
    customer = models.CharField(max_length=100)
    total = models.IntegerField()
    confirmed = models.BooleanField(default=False)


class Event(models.Model):
    """What tasks did, in order (ids grow)."""

    name = models.CharField(max_length=100)
