"""A template county plugin for approvalflow (see ``county_template.plugin``)."""
