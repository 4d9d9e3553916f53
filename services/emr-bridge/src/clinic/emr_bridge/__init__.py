"""The emr-bridge service: FHIR R4 REST and HL7 v2 SIU over MLLP, kept in sync from booking's
events.
"""
