"""The SMTP relay (DESIGN section 5): SMTP clients send through the same path as the API.

``server`` runs aiosmtpd, ``handler`` answers the SMTP commands, ``authenticator`` checks
logins and limits, ``message`` turns a received message into a send request, ``replies``
maps outcomes to SMTP codes, ``credentials`` manages the logins, ``apis`` exposes them.
"""
